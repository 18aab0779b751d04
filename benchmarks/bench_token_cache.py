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
import signal
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

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


def start_simulator(state):
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulator", "--state-dir", state, "--mailboxes", "100",
                             "--workstations", "0"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    path = os.path.join(state, "endpoints.json")
    for _attempt in range(300):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return proc, json.load(handle)
        if proc.poll() is not None:
            raise SystemExit("the simulator exited (rc %s)" % proc.returncode)
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    raise SystemExit("the simulator did not start")


def token_requests(endpoints):
    counters = requests.get(endpoints["control_uri"] + "/counters", timeout=10).json()
    return sum(int(v) for v in counters.get("token_requests", {}).values())


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
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, "collections"), ANSIBLE_HOST_KEY_CHECKING="false")
    before = token_requests(endpoints)
    started = time.monotonic()
    done = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "-f", str(hosts), "-e", "@" + extra,
                           playbook], env=env, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        print(done.stdout[-4000:])
        raise SystemExit("the play failed (rc %d)" % done.returncode)
    return time.monotonic() - started, token_requests(endpoints) - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-token-cache-") as work:
        collections = os.path.join(work, "collections", "ansible_collections", "m365ops")
        os.makedirs(collections)
        os.symlink(ROOT, os.path.join(collections, "exchange_online"))
        state = os.path.join(work, "simulator")
        os.makedirs(state)
        proc, endpoints = start_simulator(state)
        try:
            runs = args.hosts * args.tasks
            base_time, base_tokens = run_play(work, endpoints, args.hosts, args.tasks, "")
            cache_time, cache_tokens = run_play(work, endpoints, args.hosts, args.tasks,
                                                os.path.join(work, "cache", "token_cache.json"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    print("%d module runs (%d hosts x %d tasks, %d forks)" % (runs, args.hosts, args.tasks, args.hosts))
    print("  no token cache (baseline): %6.2f s, %d token requests" % (base_time, base_tokens))
    print("  shared token cache:        %6.2f s, %d token requests" % (cache_time, cache_tokens))
    print("  ratio cache/baseline: %.2f (wall time), %.3f (token requests)" % (
        cache_time / base_time, float(cache_tokens) / max(1, base_tokens)))


if __name__ == "__main__":
    main()
