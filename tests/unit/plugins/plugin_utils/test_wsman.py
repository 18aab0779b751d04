# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils/_wsman.py: envelopes built with the real pywinrm Protocol, parsing by local name, fault mapping.

The HTTP layer is faked at pywinrm's Transport.send_message, so pywinrm's own SOAP fault handling
(WSManFaultError with wsman_fault_code) is what the helper sees.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

winrm_protocol = pytest.importorskip("winrm.protocol")
winrm_exceptions = pytest.importorskip("winrm.exceptions")

from ansible_collections.m365ops.exchange_online.plugins.plugin_utils import _wsman  # noqa: E402  pylint: disable=wrong-import-position

AUTH = "http://schemas.microsoft.com/wbem/wsman/1/config/client/auth"
CLIENT = "http://schemas.microsoft.com/wbem/wsman/1/config/client"
CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"

HEADER = ('<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
          'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header>'
          '<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse</a:Action>'
          '<a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body>%s</s:Body></s:Envelope>')

CLIENT_DOC = ('<cfg:Client xmlns:cfg="%s" xml:lang="en-US"><cfg:NetworkDelayms>5000</cfg:NetworkDelayms>'
              '<cfg:URLPrefix>wsman</cfg:URLPrefix><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted>'
              '<cfg:Auth><cfg:Basic Source="GPO">false</cfg:Basic><cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos>'
              '<cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP></cfg:Auth>'
              '<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>'
              '<cfg:TrustedHosts>a.example, B.example</cfg:TrustedHosts><cfg:spn_prefix>HOST</cfg:spn_prefix></cfg:Client>'
              % CLIENT)


def fault(code, text="fault text"):
    return ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value>'
            '</s:Code><s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason><s:Detail>'
            '<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="%d" Machine="WS">'
            '<f:Message>%s</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>' % (text, code, text))


class FakeProtocol(winrm_protocol.Protocol):
    """A real pywinrm Protocol whose transport answers from a list instead of the network."""

    def __init__(self, answers):
        super().__init__("http://ws.example:5985/wsman", transport="basic", username="u", password="p")
        self.sent = []
        answers = list(answers)

        def send(message):
            self.sent.append(message if isinstance(message, str) else message.decode("utf-8"))
            answer = answers.pop(0)
            if isinstance(answer, tuple):
                status, text = answer
                raise winrm_exceptions.WinRMTransportError("http", status, text)
            if isinstance(answer, Exception):
                raise answer
            return answer.encode("utf-8")

        self.transport.send_message = send


def parse(message):
    return ET.fromstring(message)


def find(tree, local):
    return [e for e in tree.iter() if e.tag.rsplit("}", 1)[-1] == local]


def test_build_get_uses_full_uri_and_empty_body():
    text = _wsman.build_get(FakeProtocol([]), CLIENT)
    tree = parse(text)
    assert find(tree, "ResourceURI")[0].text == CLIENT
    assert find(tree, "Action")[0].text == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    assert len(find(tree, "Body")[0]) == 0


def test_build_put_partial_auth_redeclares_cfg():
    text = _wsman.build_put(FakeProtocol([]), AUTH, {"Basic": "true"})
    tree = parse(text)
    body = find(tree, "Body")[0]
    (root,) = list(body)
    # reference §6: <cfg:Auth xmlns:cfg=".../config/client/auth"><cfg:Basic>true</cfg:Basic></cfg:Auth>
    assert root.tag == "{%s}Auth" % AUTH
    assert [(c.tag, c.text) for c in root] == [("{%s}Basic" % AUTH, "true")]
    assert find(tree, "Action")[0].text == "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"
    assert 'xmlns:cfg="%s"' % AUTH in text


def test_build_put_client_settings():
    tree = parse(_wsman.build_put(FakeProtocol([]), CLIENT, {"TrustedHosts": "a,b", "AllowUnencrypted": "false"}))
    (root,) = list(find(tree, "Body")[0])
    assert root.tag == "{%s}Client" % CLIENT
    assert sorted(c.tag.rsplit("}", 1)[1] for c in root) == ["AllowUnencrypted", "TrustedHosts"]


def test_parse_client_config_by_local_name_with_gpo_marker():
    config = _wsman.parse_client_config(HEADER % CLIENT_DOC)
    assert config.values["basic"] is False and config.held("basic")
    assert config.values["digest"] is True and not config.held("digest")
    assert config.values["trusted_hosts"] == "a.example,B.example"
    assert config.extra["spn_prefix"] == "HOST"          # unknown elements are accepted (reference §3)
    assert config.extra["DefaultPorts/HTTPS"] == "5986"
    result = config.as_result()
    assert result["trusted_hosts"] == ["a.example", "B.example"]
    assert result["credssp"] is False and result["allow_unencrypted"] is False


def test_parse_other_prefix_and_config_document():
    doc = ('<x:Config xmlns:x="%s"><x:MaxEnvelopeSizekb>500</x:MaxEnvelopeSizekb><x:Client><x:AllowUnencrypted>true</x:AllowUnencrypted>'
           '<x:Auth><x:Basic>true</x:Basic></x:Auth><x:TrustedHosts/></x:Client><x:Service><x:Auth><x:Basic>false</x:Basic>'
           '</x:Auth></x:Service></x:Config>' % CONFIG)
    config = _wsman.parse_client_config(HEADER % doc)
    assert config.values == {"allow_unencrypted": True, "basic": True, "trusted_hosts": ""}


def test_parse_auth_document():
    doc = '<cfg:Auth xmlns:cfg="%s"><cfg:Basic>TRUE</cfg:Basic><cfg:CredSSP>false</cfg:CredSSP></cfg:Auth>' % AUTH
    assert _wsman.parse_client_config(HEADER % doc).values == {"basic": True, "credssp": False}


@pytest.mark.parametrize("document, message", [
    ("not xml", "cannot be parsed"),
    ('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>', "without a SOAP Body"),
    (HEADER % '<cfg:Service xmlns:cfg="x"/>', "Service element"),
    (HEADER % ('<cfg:Auth xmlns:cfg="%s"><cfg:Basic>maybe</cfg:Basic></cfg:Auth>' % AUTH), "not a boolean"),
])
def test_parse_errors(document, message):
    with pytest.raises(_wsman.WsmanError, match=message):
        _wsman.parse_client_config(document)


@pytest.mark.parametrize("current, wanted, mode, expected", [
    ("a,b", ["B", "c"], "add", ["a", "b", "c"]),
    ("", ["x, y", "X"], "add", ["x", "y"]),
    ("a,b,c", ["B"], "remove", ["a", "c"]),
    ("a", ["z"], "remove", ["a"]),
    ("a,b", ["c", "a"], "set", ["c", "a"]),
    ("a,b", [], "set", []),
])
def test_merge_trusted_hosts(current, wanted, mode, expected):
    assert _wsman.merge_trusted_hosts(current, wanted, mode) == expected


def test_same_hosts_is_case_and_order_insensitive():
    assert _wsman.same_hosts("A, b", ["B", "a"])
    assert not _wsman.same_hosts("a", "a,b")
    assert _wsman.same_hosts("", [])


def test_client_get_and_partial_puts_in_one_session():
    auth_answer = HEADER % ('<cfg:Auth xmlns:cfg="%s"><cfg:Basic>true</cfg:Basic><cfg:Digest>true</cfg:Digest></cfg:Auth>' % AUTH)
    client_answer = HEADER % CLIENT_DOC.replace("a.example, B.example", "c.example")
    protocol = FakeProtocol([HEADER % CLIENT_DOC, auth_answer, client_answer])
    client = _wsman.WsmanConfigClient(protocol, "ws001")
    assert client.get_client().values["basic"] is False
    after = client.put({"basic": True, "trusted_hosts": ["c.example"]})
    assert client.requests == [("Get", CLIENT), ("Put", AUTH), ("Put", CLIENT)]
    put_auth, put_client = parse(protocol.sent[1]), parse(protocol.sent[2])
    assert [c.tag for c in list(find(put_auth, "Body")[0])[0]] == ["{%s}Basic" % AUTH]
    assert [(c.tag, c.text) for c in list(find(put_client, "Body")[0])[0]] == [("{%s}TrustedHosts" % CLIENT, "c.example")]
    assert after.values["trusted_hosts"] == "c.example"


def test_gpo_fault_maps_to_policy_error():
    protocol = FakeProtocol([(500, fault(2150858890, "The config setting Basic cannot be changed because is controlled by policies."))])
    client = _wsman.WsmanConfigClient(protocol, "ws004")
    with pytest.raises(_wsman.PolicyControlledError) as info:
        client.put({"basic": True})
    err = info.value
    assert err.wsman_code == 2150858890 and err.status == 500
    assert "ws004" in err.message and "basic" in err.message
    assert "HKLM\\Software\\Policies\\Microsoft\\Windows\\WinRM\\Client\\AllowBasic" in err.message
    assert err.details["wsman_fault_code"] == 2150858890


@pytest.mark.parametrize("code, words", [
    (2150858811, "does not know that resource URI"),
    (2150858817, "configuration schema"),
    (2150858911, "trusted_hosts"),
    (5, "local Administrators"),
    (2150858999, "WSManFault 2150858999"),
])
def test_other_faults(code, words):
    client = _wsman.WsmanConfigClient(FakeProtocol([(500, fault(code))]), "ws001")
    with pytest.raises(_wsman.WsmanError) as info:
        client.get_client()
    assert words in info.value.message
    assert info.value.wsman_code == code
    assert "Get of %s on ws001" % CLIENT in info.value.message or code == 2150858890


def test_credentials_rejected_and_transport_errors():
    client = _wsman.WsmanConfigClient(FakeProtocol([winrm_exceptions.InvalidCredentialsError("rejected")]), "ws001")
    with pytest.raises(_wsman.WsmanError, match="rejected the connection's credentials") as info:
        client.get_client()
    assert info.value.status == 401
    client = _wsman.WsmanConfigClient(FakeProtocol([(503, "Service Unavailable")]), "ws001")
    with pytest.raises(_wsman.WsmanError, match="Bad HTTP response returned from server. Code 503"):
        client.get_client()


def test_policy_values_cover_the_reference_table():
    assert _wsman.BY_OPTION["basic"].policy_value.endswith("\\WinRM\\Client\\AllowBasic")
    assert _wsman.BY_OPTION["allow_unencrypted"].policy_value.endswith("\\AllowUnencryptedTraffic")
    assert "TrustedHostsList" in _wsman.BY_OPTION["trusted_hosts"].policy_value
    assert _wsman.BY_OPTION["certificate"].policy_value is None
