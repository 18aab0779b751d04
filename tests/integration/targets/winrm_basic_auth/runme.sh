#!/usr/bin/env bash
# The winrm_basic_auth role against WinRM workstations over a real ansible_connection=winrm.
#
# Decision: this target uses the simulator the test runner started (`make integration`): its
# integration_config.yml names the state dir, and the runner renders the workstation inventory
# (group admin_workstations: ws001.. on their own loopback ports, ws004 with client Basic held by
# Group Policy) at <state dir>/inventory.yml. The playbook resets the workstations through the control
# API first, so the target does not depend on what ran before it.
# Against real Windows hosts: EXO_WINRM_INVENTORY=path/to/inventory.yml with hosts ws001 (no WinRM
# client policy), ws002, ws003 and ws004 (Basic held by Group Policy); the simulator's counters are then not asserted.
set -euo pipefail

config="$(cd ../.. && pwd)/integration_config.yml"
python="${ANSIBLE_TEST_PYTHON_INTERPRETER:-python}"
state_dir=$("$python" -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("exo_simulator_state_dir", ""))' "$config")
inventory="${EXO_WINRM_INVENTORY:-${state_dir}/inventory.yml}"
if [ ! -f "$inventory" ]; then
    echo "No WinRM inventory: run this target with 'make integration' (which starts the simulator and renders" >&2
    echo "<state dir>/inventory.yml) or set EXO_WINRM_INVENTORY to an inventory with hosts ws001 and ws004." >&2
    exit 1
fi

ANSIBLE_HOST_KEY_CHECKING=false ansible-playbook -i "$inventory" -e "@${config}" main.yml "$@"
