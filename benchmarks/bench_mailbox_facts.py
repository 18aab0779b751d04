# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: exo_mailbox_facts reading 100,000 mailboxes (Minimum set) against a bare requests loop.

Starts its own simulator (``--mailboxes 100000``), then in the same run:

1. baseline: a bare ``requests`` loop over the same pages (same URL, headers, body and ``$select``, pages of
   1000, ``ResultSize Unlimited``) that parses each page and keeps nothing;
2. the module, through ``ansible-playbook`` with the collection on ANSIBLE_COLLECTIONS_PATH, app-only
   client secret, no token cache, ``result_size: unlimited``. The module builds the whole list (that is its
   job); ``query: length(@)`` keeps the 100,000 mailboxes out of the task result so Ansible's own result
   handling is not what is measured.

The module's Python interpreter is a small wrapper that times the module process and records its peak
resident memory (``getrusage(RUSAGE_CHILDREN)``). It prints both wall times, their ratio, the module's
peak RSS and the playbook's total time. No number is asserted.

Usage (from the repository root): ``.venv/bin/python benchmarks/bench_mailbox_facts.py [--mailboxes 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
import time

import requests

from _common import ansible_env, client_credentials_token, link_collection, read_mailboxes, run_playbook, start_simulator, stop

PLAYBOOK = """---
- name: Read every mailbox with exo_mailbox_facts
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read
      m365ops.exchange_online.exo_mailbox_facts:
        organization: "{{ endpoints.organization }}"
        app_id: "{{ endpoints.apps.full.app_id }}"
        client_secret: "{{ endpoints.apps.full.client_secret }}"
        azure_ad_authorization_endpoint_uri: "{{ endpoints.authority }}"
        connection_uri: "{{ endpoints.connection_uri }}"
        ca_path: "{{ endpoints.ca_path }}"
        token_cache_path: ""
        result_size: unlimited
        query: "length(@)"
      register: read

    - name: Check the count
      ansible.builtin.assert:
        that:
          - read.mailbox_count == endpoints.mailboxes
          - read.ansible_facts.exo_mailboxes == endpoints.mailboxes
"""

# The module's interpreter: runs the real Python, then appends its wall time and peak RSS (KiB) to a file.
WRAPPER = """#!{python}
import json, resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.call([{python!r}] + sys.argv[1:])
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open({stats!r}, "a") as handle:
    handle.write(json.dumps({{"argv": sys.argv[1:], "seconds": elapsed, "max_rss_kib": peak}}) + "\\n")
sys.exit(rc)
"""


def bare_loop(endpoints):
    """The baseline: the same pages with requests, parsed and dropped. Returns (seconds, mailboxes)."""
    session = requests.Session()
    session.trust_env = False
    start = time.perf_counter()
    access_token = client_credentials_token(session, endpoints, endpoints["connection_uri"])
    count = read_mailboxes(session, endpoints, access_token, {"ResultSize": "Unlimited"})[1]
    return time.perf_counter() - start, count


def run_module(workdir, endpoints):
    stats = os.path.join(workdir, "module-stats.jsonl")
    wrapper = os.path.join(workdir, "module-python")
    with open(wrapper, "w") as handle:
        handle.write(WRAPPER.format(python=sys.executable, stats=stats))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    playbook = os.path.join(workdir, "read.yml")
    with open(playbook, "w") as handle:
        handle.write(PLAYBOOK)
    with open(os.path.join(workdir, "endpoints.yml"), "w") as handle:
        json.dump({"endpoints": endpoints}, handle)
    env = ansible_env(os.path.join(workdir, "collections"), ANSIBLE_LOCALHOST_WARNING="false",
                      ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_RETRY_FILES_ENABLED="false")
    total = run_playbook(["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + wrapper,
                          "-e", "@" + os.path.join(workdir, "endpoints.yml"), playbook], env, cwd=workdir)
    with open(stats) as handle:
        runs = [json.loads(line) for line in handle if line.strip()]
    # The wrapper also runs for the assert task's interpreter discovery on some versions; the module run is
    # the longest one.
    module = max(runs, key=lambda r: r["seconds"])
    return module["seconds"], module["max_rss_kib"] / 1024.0, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mailboxes", type=int, default=100000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-facts-") as workdir:
        state_dir = os.path.join(workdir, "simulator")
        link_collection(os.path.join(workdir, "collections"))
        proc, endpoints = start_simulator(state_dir, args.mailboxes)
        try:
            bare, count = bare_loop(endpoints)
            module, peak_mib, playbook = run_module(workdir, endpoints)
        finally:
            stop(proc)

    if count != args.mailboxes:
        raise SystemExit("the bare loop read %d mailboxes, expected %d" % (count, args.mailboxes))
    pages = (args.mailboxes + 999) // 1000
    print("bench_mailbox_facts: %d mailboxes, Minimum set, %d pages of 1000" % (args.mailboxes, pages))
    print("  %-58s %8.2f s  ratio 1.00 (baseline)" % ("bare requests loop (token + pages, parse, keep nothing)", bare))
    print("  %-58s %8.2f s  ratio %.2f" % ("exo_mailbox_facts module process (sign-in + pages + list)", module, module / bare))
    print("  %-58s %8.2f s" % ("ansible-playbook total (startup, module, assert)", playbook))
    print("  exo_mailbox_facts peak RSS: %.1f MiB (%.2f KiB per mailbox held)" % (peak_mib, peak_mib * 1024 / args.mailboxes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
