# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures: a real simulator process per test session (and more on demand).

``simulator`` yields the parsed endpoints.json (a dict) with helpers:
``control_get(path)``, ``control_post(path, json=None)``, ``control_delete(path)``, ``session()`` (a
requests session that always verifies with the instance's ca_path, whatever REQUESTS_CA_BUNDLE says),
``state_dir``, ``process``, ``missing`` (services whose module is not in this checkout yet).
``start_simulator(*extra_args)`` starts another instance (stopped at the end of the test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SIM_DIR = os.path.join(ROOT, "tests", "simulator")
OPTIONAL = ("exchange", "graph", "winrm")


class CaSession(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE override a session's verify; pass it on every request instead."""

    def __init__(self, ca_path):
        super().__init__()
        self.ca_path = ca_path

    def request(self, method, url, *args, **kwargs):  # pylint: disable=arguments-differ
        kwargs["verify"] = self.ca_path
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)


class Simulator(dict):
    """endpoints.json of a running instance plus helpers."""

    def __init__(self, endpoints, process, state_dir, missing):
        super().__init__(endpoints)
        self.process = process
        self.state_dir = state_dir
        self.missing = missing
        self._control = requests.Session()
        self._control.trust_env = False  # never through a proxy

    def _call(self, method, path, body=None, expect=200):
        resp = self._control.request(method, self["control_uri"] + path, json=body, timeout=30)
        if expect is not None:
            assert resp.status_code in (expect if isinstance(expect, tuple) else (expect,)), resp.text
        return resp.json() if resp.content else None

    def control_get(self, path, expect=200):
        return self._call("GET", path, expect=expect)

    def control_post(self, path, json=None, expect=(200, 201)):  # pylint: disable=redefined-outer-name
        return self._call("POST", path, json, expect=expect)

    def control_delete(self, path, expect=200):
        return self._call("DELETE", path, expect=expect)

    def session(self):
        return CaSession(self["ca_path"])

    def has(self, service):
        return service not in self.missing

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def missing_services():
    return [name for name in OPTIONAL if not os.path.exists(os.path.join(SIM_DIR, name + ".py"))]


def launch(state_dir, *extra_args):
    """Start ``python -m tests.simulator`` and wait for endpoints.json; return a Simulator."""
    state_dir = str(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    missing = missing_services()
    args = [sys.executable, "-m", "tests.simulator", "--state-dir", state_dir] + list(extra_args)
    if missing:
        args.append("--partial")
    # stdout/stderr to files: a pipe nobody reads could fill and block the simulator
    with open(os.path.join(state_dir, "stdout.log"), "wb") as out, open(os.path.join(state_dir, "stderr.log"), "wb") as err:
        process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err)  # pylint: disable=consider-using-with
    path = os.path.join(state_dir, "endpoints.json")
    deadline = time.time() + 60
    while not os.path.exists(path):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            with open(os.path.join(state_dir, "stderr.log"), encoding="utf-8", errors="replace") as handle:
                pytest.fail("simulator did not start: %s" % handle.read()[-3000:])
        time.sleep(0.05)
    with open(path, encoding="utf-8") as handle:
        return Simulator(json.load(handle), process, state_dir, missing)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    sim = launch(tmp_path_factory.mktemp("simulator"), "--mailboxes", "300", "--workstations", "2")
    yield sim
    sim.stop()


@pytest.fixture
def start_simulator(tmp_path_factory):
    started = []

    def start(*extra_args):
        sim = launch(tmp_path_factory.mktemp("simulator-extra"), *extra_args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        if sim.process.poll() is None:
            sim.stop()


@pytest.fixture
def clean(simulator):
    """Faults cleared and counters reset before and after the test."""
    simulator.control_delete("/faults")
    simulator.control_post("/counters/reset")
    yield simulator
    simulator.control_delete("/faults")
