#!/usr/bin/env bash
# The trusted_ips role builds a named location from an inventory group: runs test.yml with this
# target's own inventory of "datacenter hosts" carrying public_egress_ip, and the integration config.
set -eux

config="$(cd ../.. && pwd)/integration_config.yml"
output_dir="${OUTPUT_DIR:-$(mktemp -d)}"

ansible-playbook -i inventory.yml test.yml -e "@${config}" -e "output_dir=${output_dir}" "$@"
