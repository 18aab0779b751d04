# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: exo_trusted_ips with a full named location (2,000 ranges) and many locations.

Two measurements, each against a baseline taken in the same run:

1. CIDR rules: ``normalize_ranges`` (validation, canonical form, duplicate/internal/overlap warnings with
   one sorted sweep) over 2,000 ranges, 256 of them nested in a /24, against the baseline of only parsing
   the same strings with ``ipaddress.ip_network``.
2. The module end to end: a simulator whose tenant holds 150 extra IP named locations (two pages) and one
   location with 2,000 ranges; ``ansible-playbook`` runs exo_trusted_ips on that location with the same
   2,000 ranges in another order (no change, no write), against the baseline of a bare ``requests`` client
   doing the same reads (token, both list pages) and nothing else.

Prints times and ratios; no number is asserted.
Usage (from the repository root): ``.venv/bin/python benchmarks/bench_trusted_ips.py``
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import tempfile
import time
import timeit

import requests

from _common import ansible_env, client_credentials_token, counters, link_collection, run_playbook, start_simulator, stop

PLAYBOOK = """---
- name: Keep a full named location
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Same 2,000 ranges, another order
      m365ops.exchange_online.exo_trusted_ips:
        organization: "{{ endpoints.organization }}"
        app_id: "{{ endpoints.apps.full.app_id }}"
        client_secret: "{{ endpoints.apps.full.client_secret }}"
        azure_ad_authorization_endpoint_uri: "{{ endpoints.authority }}"
        graph_uri: "{{ endpoints.graph_uri }}"
        ca_path: "{{ endpoints.ca_path }}"
        token_cache_path: ""
        name: Benchmark full location
        ip_ranges: "{{ ranges | reverse | list }}"
        trusted: false
      register: result
    - name: Nothing changed
      ansible.builtin.assert:
        that:
          - result is not changed
          - result.named_location.ip_ranges | length == 2000
"""


def ranges_2000():
    hosts = ["11.64.%d.%d" % (i // 256, i % 256) for i in range(1999)]
    return hosts + ["11.64.0.0/24"]


def bench_cidr(graph):
    values = ranges_2000()
    rounds = 20
    baseline = min(timeit.repeat(lambda: [ipaddress.ip_network(v) for v in values], number=rounds, repeat=3)) / rounds
    measured = min(timeit.repeat(lambda: graph.normalize_ranges(values), number=rounds, repeat=3)) / rounds
    print("CIDR rules over 2,000 ranges: normalize_ranges %.1f ms, ipaddress.ip_network only %.1f ms, ratio %.2f"
          % (measured * 1000, baseline * 1000, measured / baseline))


def baseline_reads(endpoints):
    """Token (client credentials) and every page of IP named locations, with plain requests."""
    session = requests.Session()
    session.trust_env = False
    token = client_credentials_token(session, endpoints, endpoints["graph_uri"])
    url = endpoints["graph_uri"] + "/v1.0/identity/conditionalAccess/namedLocations"
    params = {"$filter": "isof('microsoft.graph.ipNamedLocation')"}
    count = 0
    while url:
        body = session.get(url, params=params, headers={"Authorization": "Bearer " + token},
                           verify=endpoints["ca_path"], timeout=30).json()
        count += len(body["value"])
        url, params = body.get("@odata.nextLink"), None
    return count


def bench_module(work):
    state = os.path.join(work, "sim")
    proc, endpoints = start_simulator(state, 10, timeout=60)
    try:
        extra = [{"displayName": "Benchmark filler %03d" % i, "ipRanges": ["11.1.%d.0/24" % i]} for i in range(150)]
        extra.append({"displayName": "Benchmark full location", "ipRanges": ranges_2000()})
        requests.post(endpoints["control_uri"] + "/graph/named-locations", json=extra, timeout=30).raise_for_status()

        start = time.perf_counter()
        listed = baseline_reads(endpoints)
        baseline = time.perf_counter() - start

        collections = link_collection(os.path.join(work, "collections"))
        playbook = os.path.join(work, "bench.yml")
        with open(playbook, "w") as handle:
            handle.write(PLAYBOOK)
        env = ansible_env(collections, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
        extra_vars = json.dumps({"endpoints": endpoints, "ranges": ranges_2000(), "ansible_python_interpreter": sys.executable})
        measured = run_playbook([playbook, "-e", extra_vars], env, tail=3000)
        served = counters(endpoints)
        print("exo_trusted_ips, 2,000 ranges among %d IP named locations: playbook %.2f s, bare requests reads %.3f s, "
              "ratio %.1f (the playbook includes starting ansible-playbook and the module process)"
              % (listed, measured, baseline, measured / baseline))
        print("Graph requests served: %s; writes: %s" % (served.get("graph"), served.get("writes", {}).get("graph", 0)))
    finally:
        stop(proc)


def main():
    with tempfile.TemporaryDirectory() as work:
        sys.path.insert(0, link_collection(os.path.join(work, "import")))
        from ansible_collections.m365ops.exchange_online.plugins.module_utils import _graph  # pylint: disable=import-outside-toplevel

        bench_cidr(_graph)
        bench_module(work)


if __name__ == "__main__":
    main()
