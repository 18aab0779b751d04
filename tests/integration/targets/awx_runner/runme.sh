#!/usr/bin/env bash
# Runs the AWX guide's job through ansible-runner against the simulator, with the credentials only in
# environment variables rendered from the guide's custom credential type (see tests/ee/awx_runner.py).
set -euo pipefail

# ansible-test points ANSIBLE_COLLECTIONS_PATH at the tree that holds the collection under test.
collection_root="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/m365ops/exchange_online"
config="$(cd ../.. && pwd)/integration_config.yml"

python "${collection_root}/tests/ee/awx_runner.py" "${config}"
