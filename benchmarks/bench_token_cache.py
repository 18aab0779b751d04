# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the shared token cache against signing in on every task.

Starts its own simulator, then runs the same play twice in one run: 10 hosts (local connection), 10 forks,
10 ``exo_command`` tasks each (100 module runs), app-only client secret.

1. baseline: ``token_cache_path: ''`` (every module run asks Entra ID for a token);
2. the collection's default behaviour: one token cache file shared by all forks.

Prints both wall times, their ratio and the token requests the simulator counted for each. No number is
asserted (timing belongs here, not in the tests).

Usage (from the repository root): ``.venv/bin/python benchmarks/bench_token_cache.py [--hosts 10] [--tasks 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from _common import ansible_env, counters, link_collection, run_playbook, start_simulator, stop

PLAYBOOK = """---
- name: Cloud tasks on every host
  hosts: all
  gather_facts: false
  module_defaults:
    group/m365ops.exchange_online.exo:
      organization: "{{ endpoints.organization }}"
      app_id: "{{ endpoints.apps.full.app_id }}"
      client_secret: "{{ endpoints.apps.full.client_secret }}"
      connection_uri: "{{ endpoints.connection_uri }}"
      azure_ad_authorization_endpoint_uri: "{{ endpoints.authority }}"
      ca_path: "{{ endpoints.ca_path }}"
      token_cache_path: "{{ cache_path }}"
  tasks:
    - name: Organization config
      m365ops.exchange_online.exo_command:
        cmdlet: Get-OrganizationConfig
      loop: "{{ range(task_count | int) | list }}"
"""


def token_requests(endpoints):
    return sum(int(v) for v in counters(endpoints).get("token_requests", {}).values())


def run_play(work, endpoints, hosts, tasks, cache_path):
    inventory = os.path.join(work, "inventory.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write("\n".join("h%02d ansible_connection=local ansible_python_interpreter=%s" % (n, sys.executable)
                               for n in range(hosts)) + "\n")
    playbook = os.path.join(work, "play.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK)
    extra = os.path.join(work, "vars.json")
    with open(extra, "w", encoding="utf-8") as handle:
        json.dump({"endpoints": endpoints, "task_count": tasks, "cache_path": cache_path}, handle)
    env = ansible_env(os.path.join(work, "collections"), ANSIBLE_HOST_KEY_CHECKING="false")
    before = token_requests(endpoints)
    elapsed = run_playbook(["-i", inventory, "-f", str(hosts), "-e", "@" + extra, playbook], env, what="the play", tail=4000)
    return elapsed, token_requests(endpoints) - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-token-cache-") as work:
        link_collection(os.path.join(work, "collections"))
        state = os.path.join(work, "simulator")
        proc, endpoints = start_simulator(state, 100, timeout=60)
        try:
            runs = args.hosts * args.tasks
            base_time, base_tokens = run_play(work, endpoints, args.hosts, args.tasks, "")
            cache_time, cache_tokens = run_play(work, endpoints, args.hosts, args.tasks,
                                                os.path.join(work, "cache", "token_cache.json"))
        finally:
            stop(proc)
    print("%d module runs (%d hosts x %d tasks, %d forks)" % (runs, args.hosts, args.tasks, args.hosts))
    print("  no token cache (baseline): %6.2f s, %d token requests" % (base_time, base_tokens))
    print("  shared token cache:        %6.2f s, %d token requests" % (cache_time, cache_tokens))
    print("  ratio cache/baseline: %.2f (wall time), %.3f (token requests)" % (
        cache_time / base_time, float(cache_tokens) / max(1, base_tokens)))


if __name__ == "__main__":
    main()
