# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exo_mailbox_facts against a fake HTTP layer answering InvokeCommand pages."""

from __future__ import annotations

import json

import pytest

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _exo
from ansible_collections.m365ops.exchange_online.plugins.modules import exo_mailbox_facts
from ansible_collections.m365ops.exchange_online.tests.unit.plugins.modules._helpers import FakeHttp, FakeResponse, exo_runner

BASE = "https://outlook.example"
URL = BASE + "/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"


class FakeExchange(FakeHttp):
    """Get-Mailbox over N generated mailboxes, paging by 2, honouring ResultSize like the service."""

    def __init__(self, count=5):
        self.count = count
        self.calls = []

    def request(self, method, url, headers=None, data=None, params=None, auth=None, **kwargs):
        body = json.loads(data)["CmdletInput"]
        self.calls.append({"url": url, "params": params, "body": body})
        parameters = body.get("Parameters") or {}
        if "Identity" in parameters:
            if parameters["Identity"] != "user1":
                return FakeResponse(404, {"error": {"code": "NotFound", "message": "Error executing cmdlet", "details": [
                    {"code": "Client", "target": "", "message": "Ex6F9304|Microsoft.Exchange.Configuration.Tasks."
                     "ManagementObjectNotFoundException|The operation couldn't be performed because object '%s' couldn't "
                     "be found on 'DC1'." % parameters["Identity"]}]}})
            return FakeResponse(200, {"value": [self.mailbox(1)]})
        limit = parameters.get("ResultSize", 1000)
        limit = self.count if limit == "Unlimited" else limit
        start = int(url.rsplit("=", 1)[1]) if "skiptoken" in url else 0
        end = min(start + 2, self.count, limit)
        doc = {"@adminapi.warnings": [], "value": [self.mailbox(i) for i in range(start, end)]}
        if end < min(self.count, limit):
            doc["@odata.nextLink"] = URL + "?$skiptoken=%d" % end
        elif end < self.count:
            doc["@adminapi.warnings"] = ["There are more results available than are currently displayed. To view them, "
                                         "increase the value for the ResultSize parameter."]
        return FakeResponse(200, doc)

    @staticmethod
    def mailbox(i):
        return {"Alias": "user%d" % i, "Guid@data.type": "System.Guid", "Guid": "g%d" % i,
                "RecipientTypeDetails": "SharedMailbox" if i % 2 else "UserMailbox",
                "ProhibitSendQuota": "99 GB (106,300,440,576 bytes)", "AuditLogAgeLimit": "90.00:00:00"}


@pytest.fixture
def run(monkeypatch):
    run_exo = exo_runner(monkeypatch, exo_mailbox_facts.main, BASE)

    def _run(fake, check_mode=False, **args):
        result = run_exo(fake, check_mode=check_mode, **args)
        result["_client_built"] = bool(result["_services"])
        return result

    return _run


def test_reads_all_pages_with_minimum_select(run):
    fake = FakeExchange(5)
    result = run(fake, result_size="unlimited", check_mode=True)
    assert not result["_failed"] and not result["changed"]
    assert result["mailbox_count"] == 5 and result["truncated"] is False
    mailboxes = result["ansible_facts"]["exo_mailboxes"]
    assert [m["Alias"] for m in mailboxes] == ["user0", "user1", "user2", "user3", "user4"]
    assert "Guid@data.type" not in mailboxes[0]
    assert mailboxes[0]["ProhibitSendQuota_bytes"] == 106300440576
    assert mailboxes[0]["AuditLogAgeLimit_seconds"] == 7776000
    assert len(fake.calls) == 3
    assert fake.calls[0]["params"] == {"$select": ",".join(_exo.PROPERTY_SETS["Minimum"])}
    assert fake.calls[0]["body"]["Parameters"] == {"ResultSize": "Unlimited"}


def test_truncated_warns(run):
    result = run(FakeExchange(5), result_size=3)
    assert result["mailbox_count"] == 3 and result["truncated"] is True
    assert any("result_size=3 cut the list" in w for w in result["warnings"])
    assert not any("There are more results" in w for w in result["warnings"])


def test_property_sets_and_properties_make_one_select(run):
    fake = FakeExchange(1)
    run(fake, property_sets=["Minimum", "Quota"], properties=["LitigationHoldEnabled", "Alias"],
        filter="RecipientTypeDetails -eq 'SharedMailbox'", recipient_type_details=["SharedMailbox"])
    select = fake.calls[0]["params"]["$select"].split(",")
    assert select[:14] == _exo.PROPERTY_SETS["Minimum"]
    assert "ProhibitSendQuota" in select and select[-1] == "LitigationHoldEnabled" and select.count("Alias") == 1
    assert select.count("ExternalDirectoryObjectId") == 1
    assert fake.calls[0]["body"]["Parameters"] == {"Filter": "RecipientTypeDetails -eq 'SharedMailbox'",
                                                   "RecipientTypeDetails": ["SharedMailbox"], "ResultSize": 1000}
    fake = FakeExchange(1)
    run(fake, property_sets=["All"])
    assert fake.calls[0]["params"] is None


def test_identity_and_not_found(run):
    fake = FakeExchange(3)
    result = run(fake, identity="user1")
    assert [m["Alias"] for m in result["ansible_facts"]["exo_mailboxes"]] == ["user1"]
    assert fake.calls[0]["body"]["Parameters"] == {"Identity": "user1"}
    result = run(FakeExchange(3), identity="nobody")
    assert result["_failed"] and "object 'nobody' couldn't be found" in result["msg"]
    assert result["exception_type"].endswith("ManagementObjectNotFoundException")


def test_query_replaces_the_list(run):
    result = run(FakeExchange(4), query="[?RecipientTypeDetails=='SharedMailbox'].Alias")
    assert result["ansible_facts"]["exo_mailboxes"] == ["user1", "user3"]
    assert result["mailbox_count"] == 4


@pytest.mark.parametrize("args, message", [
    ({"query": "[?"}, "query is not a valid JMESPath expression"),
    ({"result_size": "lots"}, "result_size must be a positive integer"),
    ({"result_size": 0}, "result_size must be at least 1"),
    ({"properties": ["Alias; Remove-Mailbox"]}, "properties: 'Alias; Remove-Mailbox' is not a property name"),
    ({"identity": "a", "filter": "b"}, "mutually exclusive"),
    ({"property_sets": ["Default"]}, "property_sets"),
])
def test_bad_options_fail_before_any_request(run, args, message):
    fake = FakeExchange(1)
    result = run(fake, **args)
    assert result["_failed"] and message in result["msg"]
    assert fake.calls == [] and not result["_client_built"]
