# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's WinRM workstations, driven with real pywinrm and ansible-core's winrm connection.

The workstations run in this process on their own loopback address (HTTP and HTTPS listeners per
workstation); requests are built the way the collection's action plugin builds them:
``Protocol.build_wsman_header`` + ``xmltodict`` + ``Protocol.send_message``.
"""

from __future__ import annotations

import json
import random
import urllib.request
import xml.etree.ElementTree as ET

import pytest
import requests
import xmltodict
from winrm.exceptions import InvalidCredentialsError, WSManFaultError
from winrm.protocol import Protocol

from tests.simulator import core, tls, winrm

GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
PUT = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"
CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
CLIENT = CONFIG + "/client"
AUTH = CONFIG + "/client/auth"


class Harness:
    """Four workstations (the last one with Basic held by Group Policy) and a control listener."""

    def __init__(self, tmp_path, count=4):
        self.address = "127.%d.%d.%d" % (random.randint(100, 250), random.randint(0, 255), random.randint(2, 250))
        self.sim = core.Sim(tmp_path, addresses={"entra": self.address})
        self.ca_path, cert, key = tls.generate(str(tmp_path), [self.address])
        self.sim.tls_context = tls.server_context(cert, key)
        self.fleet = winrm.Workstations(self.sim, count, self.address).start()
        self.endpoints = {ws["name"]: ws for ws in self.fleet.endpoints()}

    def protocol(self, name, scheme="http", password=None, **kwargs):
        ws = self.endpoints[name]
        port = ws["port"] if scheme == "http" else ws["https_port"]
        if scheme == "https":
            kwargs.setdefault("ca_trust_path", self.ca_path)
        return Protocol("%s://%s:%d/wsman" % (scheme, ws["host"], port), transport="basic", username=ws["user"],
                        password=password or ws["password"], **kwargs)

    def control(self, method, path, body=None):
        req = core.Request(method, path, {}, "", {}, json.dumps(body).encode() if body is not None else b"",
                           "127.0.0.1:1", "http", {}, ("127.0.0.1", 1))
        resp = self.fleet.control(req)
        return resp.status, json.loads(resp.body)

    def stop(self):
        self.fleet.stop()


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path)
    yield h
    h.stop()


def get(protocol, uri):
    env = {"env:Envelope": protocol.build_wsman_header(action=GET, resource_uri=uri)}
    env["env:Envelope"]["env:Body"] = {}
    return ET.fromstring(protocol.send_message(xmltodict.unparse(env)))


def put(protocol, uri, root, values):
    # reference §10 caveat: the header declares cfg as .../config, so redeclare it on the body element
    env = {"env:Envelope": protocol.build_wsman_header(action=PUT, resource_uri=uri)}
    body = {"@xmlns:cfg": uri}
    body.update({"cfg:%s" % k: v for k, v in values.items()})
    env["env:Envelope"]["env:Body"] = {"cfg:%s" % root: body}
    return ET.fromstring(protocol.send_message(xmltodict.unparse(env)))


def values(tree):
    """{local name: (text, Source attribute)} of every leaf in the body."""
    body = next(e for e in tree.iter() if e.tag.endswith("}Body"))
    return {winrm.local(e.tag): (e.text or "", e.get("Source")) for e in body.iter() if len(e) == 0}


def test_endpoints_shape(harness):
    eps = harness.fleet.endpoints()
    assert [e["name"] for e in eps] == ["ws001", "ws002", "ws003", "ws004"]
    assert eps[0]["scheme"] == "http" and eps[0]["host"] == harness.address and eps[0]["port"] > 0
    assert eps[0]["https_port"] > 0 and eps[0]["gpo"] == []
    assert eps[3]["gpo"] == ["Basic"]


def test_get_auth_namespaces_and_relates_to(harness):
    p = harness.protocol("ws001")
    env = {"env:Envelope": p.build_wsman_header(action=GET, resource_uri=AUTH, message_id="0f7c5f1e-1111-2222-3333-444455556666")}
    env["env:Envelope"]["env:Body"] = {}
    tree = ET.fromstring(p.send_message(xmltodict.unparse(env)))
    relates = next(e.text for e in tree.iter() if e.tag.endswith("}RelatesTo"))
    assert relates == "uuid:0f7c5f1e-1111-2222-3333-444455556666"
    action = next(e.text for e in tree.iter() if e.tag.endswith("}Action"))
    assert action == GET + "Response"
    root = next(e for e in tree.iter() if e.tag.endswith("}Body"))[0]
    assert root.tag == "{%s}Auth" % AUTH
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"
    assert values(tree)["Basic"] == ("false", None)
    assert values(tree)["CredSSP"] == ("false", None)
    assert values(tree)["Kerberos"] == ("true", None)


def test_get_client_and_config_documents(harness):
    p = harness.protocol("ws002")
    client = get(p, CLIENT)
    root = next(e for e in client.iter() if e.tag.endswith("}Body"))[0]
    assert root.tag == "{%s}Client" % CLIENT
    v = values(client)
    assert v["AllowUnencrypted"] == ("false", None) and v["TrustedHosts"] == ("", None)
    assert v["NetworkDelayms"] == ("5000", None) and v["HTTPS"] == ("5986", None)
    config = get(p, CONFIG)
    root = next(e for e in config.iter() if e.tag.endswith("}Body"))[0]
    assert root.tag == "{%s}Config" % CONFIG
    # every element of the config document is in the .../config namespace (reference §5)
    assert all(e.tag.startswith("{%s}" % CONFIG) for e in root.iter())
    assert root.find("{%s}Client/{%s}Auth/{%s}Basic" % (CONFIG, CONFIG, CONFIG)).text == "false"


def test_pywinrm_reads_and_changes_client_auth(harness):
    p = harness.protocol("ws001")
    assert values(get(p, AUTH))["Basic"][0] == "false"
    answer = put(p, AUTH, "Auth", {"Basic": "true"})
    assert next(e.text for e in answer.iter() if e.tag.endswith("}Action")) == PUT + "Response"
    assert values(answer)["Basic"][0] == "true"       # the Put response carries the updated resource
    assert values(answer)["Digest"][0] == "true"      # partial Put: the other children keep their values
    assert values(get(p, CLIENT))["Basic"][0] == "true"
    counts = harness.sim.counters.snapshot()["wsman"]["ws001"]
    assert counts["get"] == 2 and counts["put"] == 1
    writes = harness.sim.writes()
    assert writes[-1]["service"] == "winrm" and writes[-1]["body"] == {"changed": ["Basic"]}
    status, snap = harness.control("GET", "/workstations/ws001/config")
    assert status == 200 and snap["client"]["Basic"] is True


def test_partial_client_put_trusted_hosts_and_allow_unencrypted(harness):
    p = harness.protocol("ws002")
    answer = put(p, CLIENT, "Client", {"TrustedHosts": "server1, *.corp.example", "AllowUnencrypted": "false"})
    assert values(answer)["TrustedHosts"][0] == "server1,*.corp.example"
    env = {"env:Envelope": p.build_wsman_header(action=PUT, resource_uri=CLIENT)}
    env["env:Envelope"]["env:Body"] = {"cfg:Client": {"@xmlns:cfg": CLIENT, "@xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
                                                      "cfg:TrustedHosts": {"@xsi:nil": "true"}}}
    p.send_message(xmltodict.unparse(env))
    assert values(get(p, CLIENT))["TrustedHosts"][0] == ""


def test_gpo_held_basic(harness):
    p = harness.protocol("ws004")
    v = values(get(p, CLIENT))
    assert v["Basic"] == ("false", "GPO")
    assert v["Digest"] == ("true", None)
    with pytest.raises(WSManFaultError) as info:
        put(p, AUTH, "Auth", {"Basic": "true"})
    assert info.value.wsman_fault_code == 2150858890
    assert info.value.code == 500
    assert "Basic cannot be changed because is controlled by policies" in info.value.reason
    assert values(get(p, AUTH))["Basic"] == ("false", "GPO")
    # other settings on the same workstation are not held
    assert values(put(p, AUTH, "Auth", {"Digest": "false"}))["Digest"][0] == "false"
    counts = harness.sim.counters.snapshot()["wsman"]["ws004"]
    assert counts["put"] == 2


def test_gpo_control_route(harness):
    status, snap = harness.control("POST", "/workstations/ws002/gpo", {"TrustedHosts": "*.corp.example", "AllowUnencrypted": False})
    assert status == 200
    assert snap["gpo"]["TrustedHosts"]["policy"].endswith("WinRM\\Client\\TrustedHostsList")
    assert snap["gpo"]["AllowUnencrypted"]["registry_data"] == 0
    p = harness.protocol("ws002")
    v = values(get(p, CLIENT))
    assert v["TrustedHosts"] == ("*.corp.example", "GPO") and v["AllowUnencrypted"] == ("false", "GPO")
    with pytest.raises(WSManFaultError) as info:
        put(p, CLIENT, "Client", {"TrustedHosts": "other"})
    assert info.value.wsman_fault_code == 2150858890
    harness.control("POST", "/workstations/ws002/gpo", {"TrustedHosts": None})
    assert values(put(p, CLIENT, "Client", {"TrustedHosts": "other"}))["TrustedHosts"] == ("other", None)
    status, snap = harness.control("POST", "/workstations/ws002/reset")
    assert status == 200 and snap["gpo"] == {} and snap["client"]["TrustedHosts"] == ""
    status, body = harness.control("POST", "/workstations/nope/reset")
    assert status == 404


def test_unknown_resource_uri_and_alias(harness):
    p = harness.protocol("ws001")
    for uri in ("winrm/config/client", CONFIG + "/nonexistent"):
        with pytest.raises(WSManFaultError) as info:
            get(p, uri)
        assert info.value.wsman_fault_code == 2150858811
        assert "was not found in the WS-Management catalog" in info.value.reason


def test_schema_validation(harness):
    p = harness.protocol("ws001")
    with pytest.raises(WSManFaultError) as info:
        put(p, AUTH, "Auth", {"Basic": "maybe"})
    assert info.value.wsman_fault_code == 2150858817
    with pytest.raises(WSManFaultError) as info:
        put(p, AUTH, "Auth", {"Bogus": "true"})
    assert info.value.wsman_fault_code == 2150858817
    with pytest.raises(WSManFaultError) as info:
        put(p, CLIENT, "Client", {"TrustedHosts": "bad host!"})
    assert info.value.wsman_fault_code == 2150858911
    assert values(get(p, AUTH))["Basic"][0] == "false"   # a fault changes nothing


def test_bad_credentials_401(harness):
    with pytest.raises(InvalidCredentialsError):
        get(harness.protocol("ws001", password="wrong"), AUTH)
    ws = harness.endpoints["ws001"]
    resp = requests.post("http://%s:%d/wsman" % (ws["host"], ws["port"]), data=b"<x/>", timeout=10)
    assert resp.status_code == 401
    assert "Basic" in resp.headers["WWW-Authenticate"] and "Negotiate" in resp.headers["WWW-Authenticate"]


def test_https_listener_with_ca(harness):
    p = harness.protocol("ws003", scheme="https")
    assert values(get(p, AUTH))["Basic"][0] == "false"


def test_every_fourth_workstation_already_has_basic(tmp_path):
    h = Harness(tmp_path, count=9)
    try:
        basic = [h.fleet.by_name["ws%03d" % i].config.value("Basic") for i in range(1, 10)]
        assert basic == [False, False, False, True, False, False, False, True, False]
        assert h.fleet.by_name["ws009"].config.gpo == {"Basic": False}
    finally:
        h.stop()


def test_shell_lifecycle_with_pywinrm(harness):
    p = harness.protocol("ws001")
    shell = p.open_shell(codepage=65001)
    command = p.run_command(shell, "ipconfig", ["/all"])
    stdout, stderr, code = p.get_command_output(shell, command)
    assert code == 1 and stdout == b"" and b"not run" in stderr
    p.cleanup_command(shell, command)
    p.close_shell(shell)
    counts = harness.sim.counters.snapshot()["wsman"]["ws001"]
    assert counts["shell_create"] == 1 and counts["shell_delete"] == 1 and counts["command"] == 1
    with pytest.raises(WSManFaultError):
        p.close_shell(shell)   # already deleted


def test_ansible_winrm_connection_connects(harness):
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader

    ws = harness.endpoints["ws002"]
    for scheme, port, extra in (("http", ws["port"], {}),
                                ("https", ws["https_port"], {"ansible_winrm_ca_trust_path": harness.ca_path})):
        conn = connection_loader.get("winrm", PlayContext())
        variables = {"ansible_host": ws["host"], "ansible_port": port, "ansible_user": ws["user"],
                     "ansible_password": ws["password"], "ansible_winrm_scheme": scheme,
                     "ansible_winrm_transport": ["basic"]}
        variables["_extras"] = dict(extra)   # what the task executor collects from ansible_winrm_* variables
        conn.set_options(var_options=variables)
        conn._connect()
        assert conn.shell_id and conn.protocol is not None
        assert values(get(conn.protocol, AUTH))["Basic"][0] == "false"
        conn.close()
    counts = harness.sim.counters.snapshot()["wsman"]["ws002"]
    assert counts["shell_create"] == 2 and counts["shell_delete"] == 2 and counts["get"] == 2


def test_control_list_and_local_values(harness):
    status, body = harness.control("GET", "/workstations")
    assert status == 200 and len(body["workstations"]) == 4
    status, snap = harness.control("POST", "/workstations/ws001/config", {"Basic": True, "TrustedHosts": "a, b"})
    assert snap["client"]["Basic"] is True and snap["client"]["TrustedHosts"] == "a,b"
    with pytest.raises(core.BadRequest):
        harness.control("POST", "/workstations/ws001/config", {"NetworkDelayms": 1})
    status, body = harness.control("POST", "/workstations/reset")
    assert status == 200 and "ws001" in body["reset"]
    assert harness.fleet.by_name["ws001"].config.value("Basic") is False


def test_control_via_http_urllib(harness):
    # the control routes are plain JSON; the whole simulator mounts them on its control listener
    listener = core.Listener(harness.sim, "127.0.0.1", 0, [_ControlService(harness.fleet)], tls=False).start()
    try:
        url = "http://127.0.0.1:%d/workstations/ws004/config" % listener.port
        with urllib.request.urlopen(url, timeout=10) as resp:
            snap = json.loads(resp.read())
        assert snap["gpo"]["Basic"]["policy"] == "HKLM\\Software\\Policies\\Microsoft\\Windows\\WinRM\\Client\\AllowBasic"
        assert snap["gpo"]["Basic"]["value"] is False and snap["gpo"]["Basic"]["registry_data"] == 0
    finally:
        listener.stop()


class _ControlService(core.Service):
    name = "control"

    def __init__(self, fleet):
        self.fleet = fleet

    def handle(self, req):
        return self.fleet.control(req)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_ntlm_with_message_encryption(harness, scheme):
    pytest.importorskip("spnego")
    # over HTTP pywinrm encrypts every message (message_encryption=auto); over HTTPS it sends channel bindings
    p = harness.protocol("ws002", scheme=scheme)
    ws = harness.endpoints["ws002"]
    p = Protocol(p.transport.endpoint, transport="ntlm", username=ws["user"], password=ws["password"],
                 **({"ca_trust_path": harness.ca_path} if scheme == "https" else {}))
    shell = p.open_shell(codepage=65001)
    assert values(get(p, AUTH))["Basic"][0] == "false"
    assert values(put(p, AUTH, "Auth", {"Basic": "true"}))["Basic"][0] == "true"
    # HTTP: pywinrm set up NTLM sealing (the simulator decrypted each request and encrypted each answer)
    assert (p.transport.encryption is not None) == (scheme == "http")
    p.close_shell(shell)
    assert harness.fleet.by_name["ws002"].config.value("Basic") is True
    bad = Protocol(p.transport.endpoint, transport="ntlm", username=ws["user"], password="wrong",
                   **({"ca_trust_path": harness.ca_path} if scheme == "https" else {}))
    with pytest.raises(InvalidCredentialsError):
        bad.open_shell()
