# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's HTTP framework in-process: requests, keep-alive, TLS, faults, counters, tokens."""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import time

import pytest
import requests

from tests.simulator import core, tls

from tests.simulator.tests.conftest import CaSession


class Echo(core.Service):
    name = "exchange"

    def __init__(self, sim):
        self.sim = sim
        self.connections = set()

    def handle(self, req):
        self.connections.add(id(req.conn))
        req.conn["n"] = req.conn.get("n", 0) + 1
        if req.path == "/json":
            return core.Response.json(200, {"got": req.json()})
        if req.path == "/token":
            claims = self.sim.tokens.verify(req.headers.get("authorization"), self.sim.audiences("exchange"),
                                            tenant=req.query.get("tenant"))
            return core.Response.json(200, claims)
        if req.path == "/boom":
            raise RuntimeError("bug")
        if req.path == "/missing":
            return None
        return core.Response.json(200, {"method": req.method, "path": req.path, "query": req.query, "host": req.host,
                                        "url": req.url(), "len": len(req.body), "per_conn": req.conn["n"],
                                        "agent": req.headers.get("USER-AGENT")})


class Harness:
    def __init__(self, sim, service, base, session):
        self.sim = sim
        self.service = service
        self.base = base
        self.session = session


@pytest.fixture
def harness(tmp_path):
    address = "127.%d.%d.%d" % (random.randint(1, 99), random.randint(0, 255), random.randint(1, 250))
    sim = core.Sim(tmp_path, token_lifetime=60, addresses={"entra": address, "exchange": address, "graph": address,
                                                           "scc": address, "scc_regional": address})
    ca_path, cert, key = tls.generate(str(tmp_path), [address])
    sim.tls_context = tls.server_context(cert, key)
    service = Echo(sim)
    listener = core.Listener(sim, address, 0, [service]).start()
    base = "https://%s:%d" % (address, listener.port)
    yield Harness(sim, service, base, CaSession(ca_path))
    listener.stop()


def test_request_fields_and_keep_alive(harness):
    service = harness.service
    base = harness.base
    session = harness.session
    first = session.get(base + "/a/b?x=1&y=&x=2", headers={"User-Agent": "probe"}).json()
    assert first["path"] == "/a/b" and first["query"] == {"x": "2", "y": ""}
    assert first["url"] == base + "/a/b?x=1&y=&x=2" and first["agent"] == "probe"
    assert first["host"] == base.split("//")[1]
    second = session.post(base + "/c", data=b"x" * 70000).json()
    assert second["len"] == 70000
    assert second["per_conn"] == 2  # same TCP connection: HTTP/1.1 keep-alive
    assert len(service.connections) == 1


def test_chunked_body_json_and_errors(harness):
    base = harness.base
    session = harness.session
    chunks = (part for part in [b'{"a"', b': [1, 2]}'])
    assert session.post(base + "/json", data=chunks).json() == {"got": {"a": [1, 2]}}
    bad = session.post(base + "/json", data=b"{nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    assert session.get(base + "/missing").status_code == 404
    boom = session.get(base + "/boom")
    assert boom.status_code == 500 and "traceback" not in boom.text.lower()


def test_tls_needs_the_ca(harness):
    base = harness.base
    host, port = base[len("https://"):].split(":")
    ctx = ssl.create_default_context()  # system CAs only: the simulator's CA is not among them
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            ctx.wrap_socket(sock, server_hostname=host)


def test_faults_after_match_count_and_counters(harness):
    sim = harness.sim
    base = harness.base
    session = harness.session
    sim.faults.add({"service": "exchange", "kind": "503", "after": 1, "count": 2, "match": "page", "retry_after": 7})
    assert session.get(base + "/other").status_code == 200  # does not match
    assert session.get(base + "/page1").status_code == 200  # skipped by after
    second = session.get(base + "/page2")
    assert second.status_code == 503 and second.headers["Retry-After"] == "7"
    assert session.get(base + "/page3").status_code == 503
    assert session.get(base + "/page4").status_code == 200  # count used up
    assert sim.faults.list() == []
    assert sim.counters.snapshot()["faults"] == {"503": 2}
    sim.faults.add({"service": "graph", "kind": "500"})
    assert session.get(base + "/x").status_code == 200  # another service's fault
    sim.faults.add({"service": "*", "kind": "500", "count": -1})
    assert [session.get(base + "/x").status_code for dummy in range(3)] == [500, 500, 500]
    sim.faults.clear()
    assert session.get(base + "/x").status_code == 200


def test_fault_validation():
    faults = core.Faults(core.Counters())
    for spec, word in [({"kind": "418"}, "kind"), ({"kind": "500", "service": "nope"}, "service"),
                       ({"kind": "500", "count": "x"}, "integers"), ({"kind": "500", "colour": 1}, "colour")]:
        with pytest.raises(core.BadRequest, match=word):
            faults.add(spec)


def test_reset_closes_without_answer(harness):
    sim = harness.sim
    base = harness.base
    session = harness.session
    sim.faults.add({"service": "exchange", "kind": "reset"})
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(base + "/x")
    assert session.get(base + "/x").status_code == 200


def test_counters_nested():
    counters = core.Counters()
    counters.incr("wsman", ("127.0.0.1:5985", "get"))
    counters.incr("wsman", ("127.0.0.1:5985", "get"), 2)
    counters.incr("token_requests", "password")
    snap = counters.snapshot()
    assert snap == {"wsman": {"127.0.0.1:5985": {"get": 3}}, "token_requests": {"password": 1}}
    snap["wsman"]["x"] = 1
    assert "x" not in counters.snapshot()["wsman"]
    counters.reset()
    assert counters.snapshot() == {}


def test_token_verification_codes(harness):
    sim = harness.sim
    base = harness.base
    session = harness.session
    from tests.simulator import directory
    sim.directory = directory.Directory(sim)

    def call(token, tenant=None):
        headers = {"Authorization": "Bearer " + token} if token else {}
        resp = session.get(base + "/token", params={"tenant": tenant} if tenant else None, headers=headers)
        return resp.status_code, (resp.json().get("error") or {}).get("code"), resp.headers.get("WWW-Authenticate")

    good, exp = sim.tokens.issue({"aud": "https://outlook.office365.com", "tid": sim.tenant_id})
    assert exp - time.time() <= 60
    assert call(good)[0] == 200
    assert call(good, tenant=sim.organization)[0] == 200
    assert call(None)[:2] == (401, "missing_token")
    assert call(good[:-4] + "AAAA")[:2] == (401, "invalid_token")
    assert call(sim.tokens.issue({"aud": "https://graph.microsoft.com", "tid": sim.tenant_id})[0])[:2] == (401, "invalid_audience")
    assert call(good, tenant="fabrikam.onmicrosoft.com")[:2] == (401, "invalid_tenant")
    assert call(sim.tokens.issue({"aud": sim.origin("exchange"), "tid": sim.tenant_id}, lifetime=-1)[0])[:2] == (401, "expired_token")
    status, code, challenge = call(good)
    assert status == 200
    sim.tokens.expire_all()
    status, code, challenge = call(good)
    assert (status, code) == (401, "expired_token") and challenge.startswith("Bearer")
    fresh = sim.tokens.issue({"aud": "https://outlook.office365.com", "tid": sim.tenant_id})[0]
    assert call(fresh)[0] == 200


def test_many_requests_one_connection(harness):
    """HTTP/1.1 keep-alive holds up for a long paging run (no per-request reconnects)."""
    service = harness.service
    base = harness.base
    host, port = base[len("https://"):].split(":")
    ctx = ssl.create_default_context(cafile=harness.session.ca_path)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    for i in range(200):
        conn.request("POST", "/page%d" % i, body=b"{}", headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()
    assert len(service.connections) == 1
