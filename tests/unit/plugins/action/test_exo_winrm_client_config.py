# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exo_winrm_client_config action plugin with a fake winrm connection: a real pywinrm Protocol whose
transport answers from a minimal in-test WinRM configuration service, so no network is involved."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task

winrm_protocol = pytest.importorskip("winrm.protocol")
pytest.importorskip("xmltodict")

from ansible_collections.m365ops.exchange_online.plugins.action.exo_winrm_client_config import ActionModule  # noqa: E402  pylint: disable=wrong-import-position

AUTH = "http://schemas.microsoft.com/wbem/wsman/1/config/client/auth"
CLIENT = "http://schemas.microsoft.com/wbem/wsman/1/config/client"
NS = {"Client": CLIENT, "Auth": AUTH}


class Host(object):
    """A minimal WinRM client configuration service: Get/partial Put of client and client/auth, GPO markers."""

    def __init__(self, gpo=()):
        self.values = {"Basic": "false", "Digest": "true", "Kerberos": "true", "Negotiate": "true",
                       "Certificate": "true", "CredSSP": "false", "AllowUnencrypted": "false", "TrustedHosts": ""}
        self.gpo = set(gpo)
        self.requests = []

    def _el(self, name):
        src = ' Source="GPO"' if name in self.gpo else ""
        return "<cfg:%s%s>%s</cfg:%s>" % (name, src, self.values[name], name)

    def document(self, uri):
        auth = "".join(self._el(n) for n in ("Basic", "Digest", "Kerberos", "Negotiate", "Certificate", "CredSSP"))
        if uri == AUTH:
            body = '<cfg:Auth xmlns:cfg="%s">%s</cfg:Auth>' % (AUTH, auth)
        else:
            body = '<cfg:Client xmlns:cfg="%s">%s<cfg:Auth>%s</cfg:Auth>%s</cfg:Client>' % (
                CLIENT, self._el("AllowUnencrypted"), auth, self._el("TrustedHosts"))
        return ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>%s</s:Body></s:Envelope>'
                % body).encode()

    def send(self, message):
        import xml.etree.ElementTree as ET
        tree = ET.fromstring(message)
        action = next(e.text for e in tree.iter() if e.tag.endswith("}Action"))
        uri = next(e.text for e in tree.iter() if e.tag.endswith("}ResourceURI"))
        op = action.rsplit("/", 1)[1]
        self.requests.append((op, uri))
        if op == "Put":
            body = next(e for e in tree.iter() if e.tag.endswith("}Body"))
            for child in list(body)[0]:
                self.values[child.tag.rsplit("}", 1)[1]] = child.text or ""
        return self.document(uri)


class FakeShell(object):
    tmpdir = "C:\\Windows\\Temp"   # set, so the action base class does not ask for a remote temp dir


class FakeConnection(object):
    def __init__(self, host, transport="winrm"):
        self.transport = transport
        self._shell = FakeShell()
        self.protocol = winrm_protocol.Protocol("http://ws.example:5985/wsman", transport="basic", username="u", password="p")
        self.protocol.transport.send_message = host.send
        self.connected = False

    def _connect(self):
        self.connected = True
        return self

    def get_option(self, name):
        return "ws.example"


def run(args, host, check_mode=False, diff=False, transport="winrm"):
    task = Task()
    task.args = args
    task.check_mode = check_mode
    task.diff = diff
    action = ActionModule(task, FakeConnection(host, transport), PlayContext(), loader=None, templar=None, shared_loader_obj=None)
    return action.run(task_vars={"inventory_hostname": "ws001"})


def test_check_mode_reads_once_and_predicts():
    host = Host()
    result = run({"basic": True, "trusted_hosts": ["a.example"]}, host, check_mode=True, diff=True)
    assert result["changed"] is True and result["written"] is False
    assert result["before"]["basic"] is False and result["after"]["basic"] is True
    assert result["after"]["trusted_hosts"] == ["a.example"]
    assert result["diff"] == {"before": {"basic": False, "trusted_hosts": []},
                              "after": {"basic": True, "trusted_hosts": ["a.example"]}}
    assert host.requests == [("Get", CLIENT)]


def test_real_run_puts_only_what_differs_then_is_idempotent():
    host = Host()
    result = run({"basic": True, "digest": True, "trusted_hosts": ["a.example"]}, host)
    assert result["changed"] is True and result["written"] is True
    assert host.requests == [("Get", CLIENT), ("Put", AUTH), ("Put", CLIENT)]
    assert host.values["Basic"] == "true" and host.values["TrustedHosts"] == "a.example"
    host.requests = []
    result = run({"basic": True, "digest": True, "trusted_hosts": ["A.EXAMPLE"]}, host)
    assert result["changed"] is False and host.requests == [("Get", CLIENT)]


def test_policy_held_setting_fails_or_warns():
    host = Host(gpo=["Basic"])
    result = run({"basic": True}, host)
    assert result["failed"] is True and "AllowBasic" in result["msg"]
    assert result["policy_controlled"][0]["option"] == "basic" and result["policy_controlled"][0]["conflict"]
    assert host.requests == [("Get", CLIENT)]
    result = run({"basic": True, "credssp": True, "policy_controlled": "warn"}, host)
    assert result["changed"] is True and "AllowBasic" in result["warnings"][0]
    assert host.values["Basic"] == "false" and host.values["CredSSP"] == "true"


def test_basic_over_unencrypted_warns():
    result = run({"basic": True, "allow_unencrypted": True}, Host(), check_mode=True)
    assert any("in the clear" in w for w in result["warnings"])


def test_not_a_winrm_connection():
    with pytest.raises(AnsibleActionFail, match="ansible_connection=winrm"):
        run({"basic": True}, Host(), transport="ssh")


def test_bad_option_value():
    with pytest.raises(AnsibleActionFail, match="trusted_hosts_mode"):
        run({"trusted_hosts": ["a"], "trusted_hosts_mode": "replace"}, Host())
