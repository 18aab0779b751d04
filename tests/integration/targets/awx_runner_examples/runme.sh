#!/usr/bin/env bash
# Runs every module's EXAMPLES and the guides' role playbooks through ansible-runner against the simulator,
# in check mode, with only the connection pointed at the simulated tenant (see tests/ee/run_examples.py).
set -euo pipefail

# ansible-test points ANSIBLE_COLLECTIONS_PATH at the tree that holds the collection under test.
collection_root="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/m365ops/exchange_online"
config="$(cd ../.. && pwd)/integration_config.yml"

python "${collection_root}/tests/ee/run_examples.py" "${config}"
