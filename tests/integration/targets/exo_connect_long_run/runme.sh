#!/usr/bin/env bash
# A play that outlives its tokens: this target starts its own simulator with 5-second tokens (the
# guides' "session ends after an hour", compressed) and runs cloud tasks for several lifetimes, one
# of them a single mailbox enumeration whose pages are slowed past the lifetime.
set -euo pipefail

collection_root="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/m365ops/exchange_online"
state="$(mktemp -d)"
sim_pid=""

cleanup() {
    if [ -n "${sim_pid}" ]; then
        kill -TERM "${sim_pid}" 2>/dev/null || true
        wait "${sim_pid}" 2>/dev/null || true
    fi
    rm -rf "${state}"
}
trap cleanup EXIT

(cd "${collection_root}" && exec python -m tests.simulator --state-dir "${state}" --mailboxes 2100 --workstations 0 \
    --token-lifetime 5) > "${state}/simulator.log" 2>&1 &
sim_pid=$!

for _ in $(seq 1 300); do
    [ -f "${state}/endpoints.json" ] && break
    if ! kill -0 "${sim_pid}" 2>/dev/null; then
        cat "${state}/simulator.log" >&2
        exit 1
    fi
    sleep 0.2
done
[ -f "${state}/endpoints.json" ] || { echo "the simulator did not start" >&2; cat "${state}/simulator.log" >&2; exit 1; }

(cd "${collection_root}" && python -m tests.simulator --state-dir "${state}" --render-config "${state}/config.yml")

ansible-playbook -i localhost, -c local -e "ansible_python_interpreter=$(command -v python)" -e "@${state}/config.yml" \
    -e "cache_path=${state}/cache/token_cache.json" long_run.yml "$@"
