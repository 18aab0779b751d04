#!/usr/bin/env bash
# Ten hosts run twenty cloud tasks each with ten forks, all sharing one token cache file. The cache
# is locked around "read -> acquire -> write", so the simulator must have served exactly one token.
set -euo pipefail

config="$(cd ../.. && pwd)/integration_config.yml"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

{
    echo "[forks]"
    for n in $(seq -w 1 10); do
        echo "fork${n} ansible_connection=local ansible_python_interpreter=$(command -v python)"
    done
} > "${work}/inventory.ini"

ansible-playbook -i "${work}/inventory.ini" -f 10 -e "@${config}" -e "cache_path=${work}/cache/token_cache.json" \
    forks.yml "$@"

# The cache file holds tokens: it must be private to its owner.
mode="$(stat -c '%a' "${work}/cache/token_cache.json")"
dir_mode="$(stat -c '%a' "${work}/cache")"
if [ "${mode}" != "600" ] || [ "${dir_mode}" != "700" ]; then
    echo "token cache mode ${mode} (directory ${dir_mode}); expected 600 (700)" >&2
    exit 1
fi
echo "token cache ${mode}, directory ${dir_mode}"
