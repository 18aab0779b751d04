# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control API of a running simulator process: every fault kind observed with requests, counters,
writes, rendering, several instances side by side, SIGTERM (also twice)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests
import yaml

TOKEN_FORM = {"grant_type": "client_credentials", "scope": "https://outlook.office365.com/.default"}


def _token_request(sim, session=None):
    full = sim["apps"]["full"]
    return (session or sim.session()).post(sim["authority"] + "/oauth2/v2.0/token",
                                           data=dict(TOKEN_FORM, client_id=full["app_id"], client_secret=full["client_secret"]))


def _invoke(sim, token, cmdlet, parameters=None, session=None):
    body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}}
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json",
               "X-AnchorMailbox": "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@" + sim["organization"]}
    return (session or sim.session()).post("%s/adminapi/beta/%s/InvokeCommand" % (sim["connection_uri"], sim["tenant_id"]),
                                           data=json.dumps(body), headers=headers)


def _needs(sim, service):
    if not sim.has(service):
        pytest.skip("tests/simulator/%s.py is not in this checkout yet" % service)


def test_endpoints_json_contract(simulator):
    for key in ("organization", "tenant_id", "authority", "connection_uri", "security_compliance_uri", "graph_uri",
                "ca_path", "control_uri", "apps", "users", "workstations", "managed_identity",
                "customer_organization", "customer_tenant_id"):
        assert key in simulator, key
    assert simulator["authority"] == simulator["connection_uri"] + "/" + simulator["tenant_id"]
    uris = ("connection_uri", "graph_uri", "security_compliance_uri", "security_compliance_regional_uri")
    hosts = {simulator[k].split("//")[1] for k in uris}
    assert len(hosts) == 4 and all(h.startswith("127.") and ":" not in h for h in hosts)
    for app in ("full", "no_manage_as_app", "no_directory_role", "no_graph_permission", "expired_secret",
                "unregistered_certificate"):
        entry = simulator["apps"][app]
        assert entry["app_id"] and entry["client_secret"] and os.path.exists(entry["certificate_path"])
    full = simulator["apps"]["full"]
    assert {"Exchange.ManageAsApp", "Policy.ReadWrite.ConditionalAccess"} <= set(full["roles"])
    assert "Exchange.ManageAsApp" not in simulator["apps"]["no_manage_as_app"]["roles"]
    assert simulator["users"]["mfa_admin"]["mfa_required"] and not simulator["users"]["admin"]["mfa_required"]
    assert os.stat(full["certificate_path"]).st_mode & 0o077 == 0
    with open(os.path.join(simulator.state_dir, "simulator.pid"), encoding="utf-8") as handle:
        assert int(handle.read()) == simulator.process.pid
    if simulator.has("winrm"):
        assert len(simulator["workstations"]) == 2
        assert simulator["workstations"][-1]["gpo"] == ["Basic"]
    assert simulator.control_get("/health")["status"] == "ok"


def test_429_with_retry_after_n_times(clean):
    sim = clean
    fault = sim.control_post("/faults", {"service": "entra", "kind": "429", "count": 2, "retry_after": 3})["fault"]
    assert fault["kind"] == "429" and fault["count"] == 2
    session = sim.session()
    first, second, third = (_token_request(sim, session) for dummy in range(3))
    for resp in (first, second):
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
        assert resp.json()["error"] == "temporarily_unavailable"
    assert third.status_code == 200
    counters = sim.control_get("/counters")
    assert counters["faults"] == {"429": 2}
    assert counters["token_requests"] == {"client_credentials": 1}  # the faulted ones never reached Entra ID


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_server_errors(clean, kind):
    sim = clean
    sim.control_post("/faults", {"service": "entra", "kind": kind})
    resp = _token_request(sim)
    assert resp.status_code == int(kind)
    assert "error_codes" in resp.json()
    assert _token_request(sim).status_code == 200
    assert sim.control_get("/counters")["faults"] == {kind: 1}


def test_reset_mid_stream(clean):
    """A reset on the second request: the first answers, the second loses its connection, the third answers."""
    sim = clean
    sim.control_post("/faults", {"service": "entra", "kind": "reset", "after": 1})
    session = sim.session()
    assert _token_request(sim, session).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        _token_request(sim, session)
    assert _token_request(sim, session).status_code == 200
    assert sim.control_get("/counters")["faults"] == {"reset": 1}


def test_non_json_body(clean):
    sim = clean
    sim.control_post("/faults", {"service": "entra", "kind": "non_json"})
    resp = _token_request(sim)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        resp.json()
    sim.control_post("/faults", {"service": "entra", "kind": "non_json", "status": 502})
    assert _token_request(sim).status_code == 502


def test_slow_response(clean):
    sim = clean
    sim.control_post("/faults", {"service": "entra", "kind": "slow", "delay": 1.0})
    start = time.monotonic()
    resp = _token_request(sim)
    assert resp.status_code == 200
    assert time.monotonic() - start >= 1.0
    with pytest.raises(requests.exceptions.Timeout):
        sim.control_post("/faults", {"service": "entra", "kind": "slow", "delay": 2.0})
        sim.session().post(sim["authority"] + "/oauth2/v2.0/token", data=TOKEN_FORM, timeout=0.5)


def test_match_targets_one_path(clean):
    sim = clean
    sim.control_post("/faults", {"service": "entra", "kind": "500", "match": "openid-configuration"})
    session = sim.session()
    assert _token_request(sim, session).status_code == 200
    assert session.get(sim["authority"] + "/v2.0/.well-known/openid-configuration").status_code == 500
    assert sim.control_get("/faults")["faults"] == []


def test_fault_validation_and_clearing(clean):
    sim = clean
    resp = sim.control_post("/faults", {"service": "entra", "kind": "teapot"}, expect=400)
    assert "kind" in resp["error"]["message"]
    sim.control_post("/faults", {"service": "entra", "kind": "500", "count": -1})
    assert len(sim.control_get("/faults")["faults"]) == 1
    sim.control_delete("/faults")
    assert _token_request(sim).status_code == 200


def test_expire_tokens_fault_and_route(clean):
    sim = clean
    _needs(sim, "exchange")
    token = sim.control_post("/tokens/issue", {"app": "full", "resource": sim["connection_uri"]})["access_token"]
    assert _invoke(sim, token, "Get-OrganizationConfig").status_code == 200
    sim.control_post("/faults", {"service": "exchange", "kind": "expire_tokens"})
    assert _invoke(sim, token, "Get-OrganizationConfig").status_code == 401
    assert _invoke(sim, token, "Get-OrganizationConfig").status_code == 401  # stays expired
    fresh = _token_request(sim).json()["access_token"]
    assert _invoke(sim, fresh, "Get-OrganizationConfig").status_code == 200
    sim.control_post("/tokens/expire")
    assert _invoke(sim, fresh, "Get-OrganizationConfig").status_code == 401
    counters = sim.control_get("/counters")
    assert counters["faults"] == {"expire_tokens": 1}
    assert counters["invoke_command"]["Get-OrganizationConfig"] >= 2


def test_exchange_faults_and_writes(clean):
    sim = clean
    _needs(sim, "exchange")
    sim.control_delete("/writes")
    token = sim.control_post("/tokens/issue", {"app": "full", "resource": sim["connection_uri"]})["access_token"]
    sim.control_post("/faults", {"service": "exchange", "kind": "429", "retry_after": 1, "match": "Get-Mailbox"})
    throttled = _invoke(sim, token, "Get-Mailbox", {"ResultSize": 1})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    mailbox = _invoke(sim, token, "Get-Mailbox", {"ResultSize": 1}).json()["value"][0]
    identity = mailbox.get("Alias") or mailbox.get("PrimarySmtpAddress")
    changed = _invoke(sim, token, "Set-Mailbox", {"Identity": identity, "ProhibitSendQuota": "41GB"})
    assert changed.status_code == 200, changed.text
    writes = sim.control_get("/writes")["writes"]
    assert len(writes) == 1 and writes[0]["service"] == "exchange"
    counters = sim.control_get("/counters")
    assert counters["writes"] == {"exchange": 1}
    assert counters["invoke_command"]["Get-Mailbox"] == 1 and counters["invoke_command"]["Set-Mailbox"] == 1
    sim.control_post("/exchange/reset")


def test_graph_fault(clean):
    sim = clean
    _needs(sim, "graph")
    token = sim.control_post("/tokens/issue", {"app": "full", "resource": sim["graph_uri"]})["access_token"]
    url = sim["graph_uri"] + "/v1.0/identity/conditionalAccess/namedLocations"
    sim.control_post("/faults", {"service": "graph", "kind": "503", "retry_after": 2})
    session = sim.session()
    resp = session.get(url, headers={"Authorization": "Bearer " + token})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    assert session.get(url, headers={"Authorization": "Bearer " + token}).status_code == 200
    assert sim.control_get("/counters")["graph"]["GET"] >= 1


@pytest.mark.filterwarnings("ignore:'pywinrm' will use an environment variable:DeprecationWarning")
def test_wsman_counters_per_host(clean):
    sim = clean
    _needs(sim, "winrm")
    import xmltodict
    from winrm.protocol import Protocol
    ws = sim["workstations"][0]
    protocol = Protocol("http://%s:%d/wsman" % (ws["host"], ws["port"]), transport="basic", username=ws["user"],
                        password=ws["password"])
    envelope = {"env:Envelope": protocol.build_wsman_header(
        action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
        resource_uri="http://schemas.microsoft.com/wbem/wsman/1/config/client/auth")}
    envelope["env:Envelope"]["env:Body"] = {}
    assert "Basic" in protocol.send_message(xmltodict.unparse(envelope)).decode()
    wsman = sim.control_get("/counters")["wsman"]
    assert sum(v.get("get", 0) for v in wsman.values()) == 1
    assert sim.control_get("/workstations")


def test_render_config_and_inventory(simulator, tmp_path):
    import subprocess
    import sys
    from tests.simulator.tests.conftest import ROOT
    config, inventory = tmp_path / "integration_config.yml", tmp_path / "inventory.yml"
    subprocess.run([sys.executable, "-m", "tests.simulator", "--state-dir", simulator.state_dir, "--render-config",
                    str(config), "--render-inventory", str(inventory)], cwd=ROOT, check=True, timeout=60)
    rendered = yaml.safe_load(config.read_text())
    assert rendered["exo_simulator"] is True
    assert rendered["exo_simulator_state_dir"] == os.path.abspath(simulator.state_dir)
    for key, value in simulator.items():
        assert rendered["exo_" + key] == value
    hosts = yaml.safe_load(inventory.read_text())["all"]["children"]["admin_workstations"]["hosts"] or {}
    assert len(hosts) == len(simulator["workstations"])
    for ws in simulator["workstations"]:
        host = hosts[ws["name"]]
        assert (host["ansible_host"], host["ansible_port"], host["ansible_connection"]) == (ws["host"], ws["port"], "winrm")
        assert host["ansible_winrm_transport"] == "basic" and host["ansible_password"] == ws["password"]


def test_two_instances_side_by_side_and_sigterm_twice(simulator, start_simulator):
    other = start_simulator("--workstations", "0", "--mailboxes", "10", "--token-lifetime", "5")
    assert other["connection_uri"] != simulator["connection_uri"]
    assert other["control_uri"] != simulator["control_uri"]
    for sim in (simulator, other):
        assert _token_request(sim).status_code == 200
    assert _token_request(other).json()["expires_in"] <= 5
    # a token of one instance means nothing to the other (own signing key)
    if simulator.has("exchange"):
        token = simulator.control_post("/tokens/issue", {"resource": simulator["connection_uri"]})["access_token"]
        assert _invoke(other, token, "Get-OrganizationConfig").status_code == 401
    other.process.send_signal(signal.SIGTERM)
    other.process.send_signal(signal.SIGTERM)
    assert other.process.wait(timeout=20) == 0
    assert os.path.exists(os.path.join(other.state_dir, "endpoints.json"))
    assert os.path.exists(other["ca_path"])
    assert not os.path.exists(os.path.join(other.state_dir, "simulator.pid"))
    with open(os.path.join(other.state_dir, "stderr.log"), encoding="utf-8") as handle:
        assert "Traceback" not in handle.read()
    assert _token_request(simulator).status_code == 200


def test_missing_service_module_fails_loudly(tmp_path):
    from tests.simulator import __main__ as entry
    with pytest.raises(SystemExit, match="exchange.py is missing"):
        entry.load_optional(False, here=str(tmp_path))
    assert entry.load_optional(True, here=str(tmp_path)) == {"exchange": None, "graph": None, "winrm": None}
    with pytest.raises(SystemExit, match="does not exist"):
        entry.load_endpoints(str(tmp_path))
