#!/usr/bin/env bash
# Every sign-in method, a few failures and a token refresh at -vvv; then the whole output is searched
# for every secret the play was given and every token in the cache. Also checks what the person
# running the play must see: the device code prompt and the retired-cloud warning.
set -euo pipefail

config="$(cd ../.. && pwd)/integration_config.yml"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# Azure puts the managed identity endpoint in the host's environment; a task-level `environment:` would
# be echoed by ansible's own -vvv EXEC line, which is not the collection's output.
IDENTITY_ENDPOINT="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["exo_managed_identity"]["endpoint"])' "${config}")"
IDENTITY_HEADER="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["exo_managed_identity"]["header"])' "${config}")"
export IDENTITY_ENDPOINT IDENTITY_HEADER

status=0
ansible-playbook -vvv -i localhost, -c local -e "ansible_python_interpreter=$(command -v python)" -e "@${config}" \
    -e "work=${work}" secrets.yml > "${work}/output.log" 2>&1 || status=$?
if [ "${status}" -ne 0 ]; then
    tail -n 80 "${work}/output.log"
    echo "the play failed (rc ${status})" >&2
    exit "${status}"
fi

python check_output.py "${config}" "${work}/output.log" "${work}/cache/token_cache.json" "${work}/issued_tokens.txt"
