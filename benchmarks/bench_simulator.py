# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the simulator's memory at 100,000 mailboxes and its InvokeCommand page rate.

Starts two simulators side by side: one with 10 mailboxes (the baseline: Python, TLS, Entra ID, every
service) and one with ``--mailboxes 100000``. With a token from the simulated Entra ID (client
credentials, plain requests), it then pages through all 100,000 mailboxes (Minimum set, pages of 1000,
``ResultSize Unlimited``) and runs one OPATH filter that scans the whole tenant. It prints:

- the resident memory (VmRSS) of both simulators at start and of the large one after the reads, and the
  difference to the baseline (mailboxes are generated lazily from the seed, so it should stay small);
- the page rate (InvokeCommand pages per second, mailboxes per second) and the filter scan time.

No number is asserted. Usage (from the repository root): ``.venv/bin/python benchmarks/bench_simulator.py``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import requests

from _common import client_credentials_token, read_mailboxes, start_simulator, stop


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mailboxes", type=int, default=100000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sim-") as workdir:
        small_dir, big_dir = os.path.join(workdir, "small"), os.path.join(workdir, "big")
        small = start_simulator(small_dir, 10)[0]
        big, endpoints = start_simulator(big_dir, args.mailboxes)
        try:
            time.sleep(0.5)
            rss_small, rss_big_start = rss_mib(small.pid), rss_mib(big.pid)
            session = requests.Session()
            session.trust_env = False
            access_token = client_credentials_token(session, endpoints, endpoints["connection_uri"])
            start = time.perf_counter()
            pages, count = read_mailboxes(session, endpoints, access_token, {"ResultSize": "Unlimited"})
            paging = time.perf_counter() - start
            start = time.perf_counter()
            f_pages, f_count = read_mailboxes(session, endpoints, access_token,
                                              {"ResultSize": "Unlimited", "Filter": "RecipientTypeDetails -eq 'RoomMailbox' "
                                               "-and DisplayName -like 'Room North*'"})
            scan = time.perf_counter() - start
            rss_big_end = rss_mib(big.pid)
        finally:
            stop(big)
            stop(small)

    if count != args.mailboxes:
        raise SystemExit("read %d mailboxes, expected %d" % (count, args.mailboxes))
    print("bench_simulator: %d mailboxes" % args.mailboxes)
    print("  simulator RSS, 10 mailboxes (baseline, same run):   %7.1f MiB" % rss_small)
    print("  simulator RSS, %d mailboxes at start:          %7.1f MiB  (+%.1f MiB over the baseline)"
          % (args.mailboxes, rss_big_start, rss_big_start - rss_small))
    print("  simulator RSS, %d mailboxes after the reads:   %7.1f MiB  (+%.1f MiB over the baseline)"
          % (args.mailboxes, rss_big_end, rss_big_end - rss_small))
    print("  Get-Mailbox Minimum set, pages of 1000: %d pages in %.2f s = %.1f pages/s, %.0f mailboxes/s"
          % (pages, paging, pages / paging, count / paging))
    print("  OPATH filter over the whole tenant: %d matches in %d page(s), %.2f s" % (f_count, f_pages, scan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
