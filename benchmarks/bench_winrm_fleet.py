# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: configure 200 simulated admin workstations over ansible_connection=winrm with 50 forks.

Starts its own simulator (``--workstations 200``), then runs, with the same inventory, hosts and forks:

1. baseline: one ``ansible.builtin.debug`` task on the 200 hosts (Ansible's own per-host cost, no WinRM);
2. one ``exo_winrm_client_config`` task in check mode (connect, one Get, close: the per-task cost of WinRM);
3. the ``winrm_basic_auth`` role (one WS-Man Get per host, a Put and a read-back Get where Basic is off;
   the last workstation's Basic is held by Group Policy, so the role runs with policy_controlled=warn);
4. the role again (every host compliant: one Get, no Put). The role has three tasks per host (argument
   validation, configure, verify) plus the read-back where it changed something.

It prints each wall time, its ratio to the baseline measured in the same run, and the simulator's
WS-Management counters. No timing is asserted (speed is reported, not tested).

Usage (from the repository root): ``.venv/bin/python benchmarks/bench_winrm_fleet.py [--hosts 200] [--forks 50]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, ansible_env, counters, link_collection, run_playbook, start_simulator, stop

DEBUG_PLAY = """---
- name: Baseline - one debug task per workstation
  hosts: admin_workstations
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }}"
"""

READ_PLAY = """---
- name: Read every workstation's WinRM client configuration (check mode)
  hosts: admin_workstations
  gather_facts: false
  tasks:
    - name: Read
      m365ops.exchange_online.exo_winrm_client_config:
        basic: true
        policy_controlled: warn
      check_mode: true
"""

ROLE_PLAY = """---
- name: Enable WinRM client Basic authentication on every admin workstation
  hosts: admin_workstations
  gather_facts: false
  roles:
    - role: m365ops.exchange_online.winrm_basic_auth
      vars:
        winrm_basic_auth_policy_controlled: warn
"""


def wsman_counters(endpoints):
    return counters(endpoints).get("wsman", {})


def totals(wsman):
    out = {}
    for per_host in wsman.values():
        for key, value in per_host.items():
            out[key] = out.get(key, 0) + value
    return out


def delta(after, before):
    return dict((k, after.get(k, 0) - before.get(k, 0)) for k in sorted(set(after) | set(before)))


def play(workdir, name, text, inventory, forks):
    path = os.path.join(workdir, name)
    with open(path, "w") as handle:
        handle.write(text)
    env = ansible_env(os.path.join(workdir, "collections"), ANSIBLE_HOST_KEY_CHECKING="false",
                      ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_DISPLAY_OK_HOSTS="false",
                      ANSIBLE_DISPLAY_SKIPPED_HOSTS="false")
    return run_playbook(["-i", inventory, "-f", str(forks), path], env, what=name, cwd=workdir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--forks", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-winrm-") as workdir:
        state_dir = os.path.join(workdir, "simulator")
        link_collection(os.path.join(workdir, "collections"))
        started = time.perf_counter()
        proc, endpoints = start_simulator(state_dir, 10, workstations=args.hosts, timeout=180)
        sim_start = time.perf_counter() - started
        try:
            inventory = os.path.join(state_dir, "inventory.yml")
            subprocess.run([sys.executable, "-m", "tests.simulator", "--state-dir", state_dir, "--render-inventory",
                            inventory], cwd=ROOT, check=True)

            base = play(workdir, "debug.yml", DEBUG_PLAY, inventory, args.forks)
            c_read = totals(wsman_counters(endpoints))
            read = play(workdir, "read.yml", READ_PLAY, inventory, args.forks)
            c0 = totals(wsman_counters(endpoints))
            role = play(workdir, "role.yml", ROLE_PLAY, inventory, args.forks)
            c1 = totals(wsman_counters(endpoints))
            again = play(workdir, "role.yml", ROLE_PLAY, inventory, args.forks)
            c2 = totals(wsman_counters(endpoints))
        finally:
            stop(proc)

    print("bench_winrm_fleet: %d simulated workstations, %d forks (simulator up in %.1f s)"
          % (args.hosts, args.forks, sim_start))
    print("  %-52s %8.2f s  ratio 1.00 (baseline)" % ("ansible.builtin.debug on every host", base))
    print("  %-52s %8.2f s  ratio %.2f" % ("exo_winrm_client_config, check mode (one task)", read, read / base))
    print("  %-52s %8.2f s  ratio %.2f" % ("winrm_basic_auth role (enable Basic)", role, role / base))
    print("  %-52s %8.2f s  ratio %.2f" % ("winrm_basic_auth role again (all compliant)", again, again / base))
    print("  WS-Man requests, check-mode read:  %s" % json.dumps(delta(c0, c_read), sort_keys=True))
    print("  WS-Man requests, first role run:  %s" % json.dumps(delta(c1, c0), sort_keys=True))
    print("  WS-Man requests, second role run: %s" % json.dumps(delta(c2, c1), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
