# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exo_command against a fake HTTP layer answering InvokeCommand."""

from __future__ import annotations

import json

import pytest

from ansible_collections.m365ops.exchange_online.plugins.modules import exo_command
from ansible_collections.m365ops.exchange_online.tests.unit.plugins.modules._helpers import FakeHttp, FakeResponse, exo_runner

BASE = "https://outlook.example"
NO_CHANGE = "The command completed successfully but no settings of 'user1' have been modified."


class FakeExchange(FakeHttp):
    """Set-Mailbox keeps AuditEnabled per mailbox and warns when nothing changes; Get-* return fixed objects."""

    def __init__(self):
        self.calls = []
        self.audit = {"user1": False}

    def request(self, method, url, headers=None, data=None, params=None, auth=None, **kwargs):
        body = json.loads(data)["CmdletInput"]
        self.calls.append({"url": url, "body": body, "headers": headers})
        name, parameters = body["CmdletName"], body.get("Parameters") or {}
        if name == "Set-Mailbox":
            if parameters.get("AuditEnabled") == self.audit[parameters["Identity"]]:
                return FakeResponse(200, {"@adminapi.warnings": [NO_CHANGE], "value": []})
            self.audit[parameters["Identity"]] = parameters["AuditEnabled"]
            return FakeResponse(200, {"@adminapi.warnings": [], "value": []})
        if name == "Get-AcceptedDomain":
            return FakeResponse(200, {"@adminapi.warnings": ["Heads up."], "value": [
                {"DomainName": "contoso.com", "Default": True, "Default@odata.type": "#Boolean"},
                {"DomainName": "contoso.onmicrosoft.com", "Default": False}]})
        return FakeResponse(400, {"error": {"code": "BadRequest", "message": "Error executing cmdlet", "details": [
            {"code": "Client", "target": "", "message": "CommandNotFoundException|System.Management.Automation."
             "CommandNotFoundException|The term '%s' is not recognized as a name of a cmdlet, function, script file, "
             "or executable program." % name}]}})


@pytest.fixture
def run(monkeypatch):
    return exo_runner(monkeypatch, exo_command.main, BASE)


def test_set_ladder_check_real_check_real(run):
    fake = FakeExchange()
    args = dict(cmdlet="Set-Mailbox", parameters={"Identity": "user1", "AuditEnabled": True})
    result = run(fake, check_mode=True, **args)
    assert result["changed"] and fake.calls == [] and result["_services"] == []
    result = run(fake, **args)
    assert result["changed"] and fake.audit["user1"] is True
    assert fake.calls[0]["body"] == {"CmdletName": "Set-Mailbox", "Parameters": {"Identity": "user1", "AuditEnabled": True}}
    result = run(fake, check_mode=True, **args)
    assert result["changed"] and len(fake.calls) == 1
    result = run(fake, **args)
    assert not result["changed"] and result["server_warnings"] == [NO_CHANGE]
    assert "Exchange Online: " + NO_CHANGE in result["warnings"]


def test_get_runs_in_check_mode_with_query_and_warnings(run):
    fake = FakeExchange()
    result = run(fake, check_mode=True, cmdlet="Get-AcceptedDomain", query="[?Default].DomainName")
    assert not result["changed"] and result["result"] == ["contoso.com"] and result["count"] == 2
    assert "Exchange Online: Heads up." in result["warnings"]
    result = run(fake, cmdlet="Get-AcceptedDomain")
    assert result["result"][0] == {"DomainName": "contoso.com", "Default": True}


def test_parameters_are_json_never_script(run):
    fake = FakeExchange()
    value = "user1'; Remove-Mailbox -Identity * -Confirm:$false; '"
    fake.audit[value] = False
    run(fake, cmdlet="Set-Mailbox", parameters={"Identity": value, "AuditEnabled": True})
    assert fake.calls[0]["body"]["Parameters"]["Identity"] == value
    assert fake.calls[0]["headers"]["X-CmdletName"] == "Set-Mailbox"


def test_security_compliance_service_is_passed_on(run):
    fake = FakeExchange()
    run(fake, cmdlet="Get-AcceptedDomain", service="security_compliance")
    assert run(fake, cmdlet="Get-AcceptedDomain", service="security_compliance")["_services"] == ["security_compliance"]


def test_unknown_cmdlet_fails_with_service_text(run):
    result = run(FakeExchange(), cmdlet="Get-Nothing")
    assert result["_failed"] and "The term 'Get-Nothing' is not recognized" in result["msg"]
    assert result["status"] == 400


@pytest.mark.parametrize("args, message", [
    ({"cmdlet": "Get-Mailbox; Remove-Mailbox"}, "Verb-Noun form"),
    ({"cmdlet": "Get-Mailbox", "parameters": {"Identity x": 1}}, "is not a cmdlet parameter name"),
    ({"cmdlet": "Get-Mailbox", "parameters": {"ResultSize": 5}}, "use the result_size option"),
    ({"cmdlet": "Get-Mailbox", "result_size": "many"}, "result_size must be"),
    ({"cmdlet": "Get-Mailbox", "query": "[?"}, "query is not a valid JMESPath expression"),
])
def test_bad_options_fail_before_any_request(run, args, message):
    fake = FakeExchange()
    result = run(fake, **args)
    assert result["_failed"] and message in result["msg"]
    assert fake.calls == [] and result["_services"] == []
