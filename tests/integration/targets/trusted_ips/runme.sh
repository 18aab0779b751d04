#!/usr/bin/env bash
# The trusted_ips role builds a named location from an inventory group: runs test.yml with this
# target's own inventory of "datacenter hosts" carrying public_egress_ip, and the integration config;
# then runs the role at -vvv and checks that no secret or token reaches the output.
set -eux

config="$(cd ../.. && pwd)/integration_config.yml"
output_dir="${OUTPUT_DIR:-$(mktemp -d)}"

ansible-playbook -i inventory.yml test.yml -e "@${config}" -e "output_dir=${output_dir}" "$@"

log="${output_dir}/trusted_ips-vvv.log"
ansible-playbook -vvv -i inventory.yml secrets.yml -e "@${config}" >"${log}" 2>&1
set +x  # the trace would print the secret read below
secret=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["exo_apps"]["full"]["client_secret"])' "${config}")
grep -q "changed: \[localhost\]" "${log}" || { echo "the -vvv run changed nothing"; exit 1; }
if grep -qF -- "${secret}" "${log}"; then echo "the client secret appears in -vvv output"; exit 1; fi
# A JWT (access token) starts with the base64 of '{"' followed by a header: eyJ...
if grep -qE 'eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}' "${log}"; then echo "a token appears in -vvv output"; exit 1; fi
echo "no secret or token in $(wc -l <"${log}") lines of -vvv output"
