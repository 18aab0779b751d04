# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_exo.py: the InvokeCommand client against a fake HTTP layer."""

from __future__ import annotations

import json

import pytest

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _exo
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import (
    ExoAuthError,
    ExoConfigError,
    ExoHttpError,
    ExoServiceError,
)

BASE = "https://outlook.example"
URL = BASE + "/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"
ANCHOR = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"


class FakeResponse:
    def __init__(self, status, body=None, text=None, headers=None):
        self.status_code = status
        self.text = text if text is not None else ("" if body is None else json.dumps(body))
        self.content = self.text.encode("utf-8")
        self.headers = headers or {}
        self.closed = False

    def json(self):
        return json.loads(self.text)

    def close(self):
        self.closed = True


class FakeHttp:
    """Scripted responses in order; records each request."""

    max_retries = 5

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls = []
        self.slept = []
        self.retries = 0

    def request(self, method, url, headers=None, data=None, params=None, auth=None, **kwargs):
        self.calls.append({"method": method, "url": url, "headers": headers, "data": data, "params": params,
                           "auth": auth, "kwargs": kwargs})
        return self.responses.pop(0)

    @staticmethod
    def backoff(attempt):
        return 2.0 * 2 ** attempt

    def sleep(self, seconds):
        self.slept.append(seconds)

    @staticmethod
    def redact(text):
        return text.replace("SECRET", "********")


def page(items, next_link=None, warnings=None):
    body = {"@odata.context": BASE + "/adminapi/beta/x/$metadata#Collection(Exchange.GenericHashTable)",
            "adminapi.warnings@odata.type": "#Collection(String)", "@adminapi.warnings": warnings or [],
            "value": items}
    if next_link:
        body["@odata.nextLink"] = next_link
    return FakeResponse(200, body)


def mbx(n):
    return {"Guid@data.type": "System.Guid", "Guid@odata.type": "#Guid", "Guid": "g%d" % n, "Alias": "user%d" % n}


def client(http, warned=None, **kwargs):
    warn = warned.append if warned is not None else None
    return _exo.ExoClient(http, "AUTH", BASE + "/", "contoso.onmicrosoft.com", ANCHOR, warn=warn, **kwargs)


def error(status, message, code="BadRequest"):
    return FakeResponse(status, {"error": {"code": code, "message": "Error executing cmdlet",
                                           "details": [{"code": "Client", "target": "", "message": message}]}})


def test_request_shape_and_annotations_removed():
    http = FakeHttp(page([mbx(1)]))
    c = client(http, page_size=500)
    items = list(c.invoke("Get-Mailbox", {"-Identity": "user1", "Archive": True}, select=["Alias", "Guid", "Alias"]))
    assert items == [{"Guid": "g1", "Alias": "user1"}]
    call = http.calls[0]
    assert call["method"] == "POST" and call["url"] == URL and call["auth"] == "AUTH"
    assert call["params"] == {"$select": "Alias,Guid"}
    headers = call["headers"]
    assert headers["X-AnchorMailbox"] == ANCHOR
    assert headers["Prefer"] == "odata.maxpagesize=500"
    assert headers["X-ResponseFormat"] == "json" and headers["Content-Type"] == "application/json"
    assert json.loads(call["data"]) == {"CmdletInput": {"CmdletName": "Get-Mailbox",
                                                        "Parameters": {"Identity": "user1", "Archive": True}}}


def test_paging_follows_next_link_with_the_same_body_lazily():
    link2, link3 = URL + "?$skiptoken=a", URL + "?$skiptoken=b"
    http = FakeHttp(page([mbx(1), mbx(2)], link2), page([mbx(3)], link3), page([mbx(4)]))
    gen = client(http).invoke("Get-Mailbox", result_size="unlimited")
    assert next(gen)["Alias"] == "user1"
    assert len(http.calls) == 1  # the next page is fetched only when needed
    rest = list(gen)
    assert [i["Alias"] for i in rest] == ["user2", "user3", "user4"]
    assert [c["url"] for c in http.calls] == [URL, link2, link3]
    assert len({c["data"] for c in http.calls}) == 1
    assert json.loads(http.calls[0]["data"])["CmdletInput"]["Parameters"] == {"ResultSize": "Unlimited"}
    assert [c["params"] for c in http.calls] == [None, None, None]


def test_result_size_stops_early_and_sets_truncated():
    http = FakeHttp(page([mbx(1), mbx(2)], URL + "?$skiptoken=a"), page([mbx(3), mbx(4)], URL + "?$skiptoken=b"))
    c = client(http)
    items = list(c.invoke("Get-Mailbox", result_size=3))
    assert len(items) == 3 and c.truncated
    assert len(http.calls) == 2
    assert json.loads(http.calls[0]["data"])["CmdletInput"]["Parameters"]["ResultSize"] == 3
    # Exactly at the end of a page with a nextLink left: truncated, and no extra request.
    http = FakeHttp(page([mbx(1), mbx(2)], URL + "?$skiptoken=a"))
    c = client(http)
    assert len(list(c.invoke("Get-Mailbox", result_size=2))) == 2 and c.truncated and len(http.calls) == 1


def test_warnings_surface_and_truncation_warning_sets_flag():
    warned = []
    more = "There are more results available than are currently displayed. To view them, increase the value for the " \
           "ResultSize parameter."
    http = FakeHttp(page([mbx(1)], warnings=["Mailbox is on hold.", more]))
    c = client(http, warned)
    list(c.invoke("Get-Mailbox", result_size=1))
    assert c.truncated and c.warnings == ["Mailbox is on hold.", more]
    assert warned == ["Exchange Online: Mailbox is on hold."]
    c2 = client(FakeHttp(page([])))
    assert list(c2.invoke("Get-Mailbox")) == [] and not c2.truncated


def test_service_error_text_from_details():
    http = FakeHttp(error(404, "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
                               "The operation couldn't be performed because object 'a|b' couldn't be found.", "NotFound"))
    with pytest.raises(ExoServiceError) as info:
        list(client(http).invoke("Get-Mailbox", {"Identity": "a|b"}))
    exc = info.value
    assert exc.message == "Get-Mailbox failed: The operation couldn't be performed because object 'a|b' couldn't be found."
    assert exc.status == 404 and exc.error_id == "Ex6F9304"
    assert exc.exception_type.endswith("ManagementObjectNotFoundException")
    assert exc.details["cmdlet"] == "Get-Mailbox"


def test_error_fallbacks_and_auth_errors():
    inner = FakeResponse(500, {"error": {"code": "X", "message": "Error executing cmdlet",
                                         "innererror": {"internalexception": {"message": "inner text"}}}})
    with pytest.raises(ExoServiceError, match="inner text"):
        list(client(FakeHttp(inner)).invoke("Get-Mailbox"))
    html = FakeResponse(502, text="<html><body><h1>Bad gateway SECRET</h1></body></html>")
    with pytest.raises(ExoServiceError, match=r"Bad gateway \*\*\*\*\*\*\*\*"):
        list(client(FakeHttp(html)).invoke("Get-Mailbox"))
    with pytest.raises(ExoAuthError, match="Exchange.ManageAsApp") as info:
        list(client(FakeHttp(FakeResponse(401, {"error": {"code": "invalid_token", "message": "no"}}))).invoke("Get-Mailbox"))
    assert info.value.status == 401
    with pytest.raises(ExoAuthError, match="directory role"):
        list(client(FakeHttp(error(403, "UnAuthorized|X|The role assigned to application isn't supported"))).invoke("Get-Mailbox"))


def test_transient_exchange_exceptions_are_retried():
    http = FakeHttp(error(500, "Id|Microsoft.Exchange.Data.Storage.StorageTransientException|busy"),
                    FakeResponse(429, text="You have reached the maximum number of concurrent requests per tenant."),
                    page([mbx(1)]))
    assert len(list(client(http).invoke("Get-Mailbox"))) == 1
    assert http.slept == [2.0, 4.0] and http.retries == 2


def test_non_json_success_and_foreign_next_link():
    with pytest.raises(ExoHttpError, match="not JSON"):
        list(client(FakeHttp(FakeResponse(200, text="<html>oops</html>"))).invoke("Get-Mailbox"))
    http = FakeHttp(page([mbx(1)], "https://evil.example/adminapi/beta/x/InvokeCommand?$skiptoken=a"))
    with pytest.raises(ExoHttpError, match="another host"):
        list(client(http).invoke("Get-Mailbox", result_size="unlimited"))
    assert len(http.calls) == 1


def test_parameter_encoding():
    encoded = _exo.encode_parameters({"GrantSendOnBehalfTo": {"add": ["a"], "remove": ["b"]}, "Confirm": False,
                                      "RecipientTypeDetails": ("UserMailbox", "SharedMailbox"), "Type": None})
    assert encoded == {"GrantSendOnBehalfTo": {"add": ["a"], "remove": ["b"], "@odata.type": "#Exchange.GenericHashTable"},
                       "Confirm": False, "RecipientTypeDetails": ["UserMailbox", "SharedMailbox"], "Type": None}
    for bad in ({"Identity; Remove-Mailbox x": 1}, {"": 1}, {"a b": 1}):
        with pytest.raises(ExoConfigError):
            _exo.encode_parameters(bad)
    with pytest.raises(ExoConfigError):
        _exo.encode_parameters(["Identity"])
    for bad in ("Get-Mailbox; Remove-Mailbox", "Get Mailbox", "", None):
        with pytest.raises(ExoConfigError):
            client(FakeHttp()).invoke(bad)


@pytest.mark.parametrize("value, expected", [(5, 5), ("12", 12), ("Unlimited", "Unlimited"), ("unlimited", "Unlimited"),
                                             (None, None)])
def test_result_size_values(value, expected):
    assert _exo.normalize_result_size(value) == expected


@pytest.mark.parametrize("value", [0, -1, "lots", True, "1.5"])
def test_result_size_rejected(value):
    with pytest.raises(ExoConfigError, match="result_size"):
        _exo.normalize_result_size(value)


def test_display_strings_to_numbers():
    item = _exo.add_numeric_values({"ProhibitSendQuota": "99 GB (106,300,440,576 bytes)", "ArchiveQuota": "Unlimited",
                                    "AuditLogAgeLimit": "90.00:00:00", "RetainDeletedItemsFor": "01:30:00",
                                    "LitigationHoldDuration": "Unlimited", "DisplayName": "Unlimited",
                                    "RulesQuota": "256 KB (262,144 bytes)", "Alias": "x"})
    assert item["ProhibitSendQuota_bytes"] == 106300440576 and item["RulesQuota_bytes"] == 262144
    assert item["ArchiveQuota_bytes"] is None and item["LitigationHoldDuration_seconds"] is None
    assert item["AuditLogAgeLimit_seconds"] == 90 * 86400 and item["RetainDeletedItemsFor_seconds"] == 5400
    assert "DisplayName_bytes" not in item and "Alias_bytes" not in item


def test_discover_scc_base():
    http = FakeHttp(FakeResponse(302, headers={"Location": "https://nam12b.ps.compliance.protection.outlook.com/adminapi/beta/x"}))
    assert client(http).discover_scc_base("https://ps.compliance.protection.outlook.com/") == \
        "https://nam12b.ps.compliance.protection.outlook.com"
    call = http.calls[0]
    assert call["method"] == "GET" and call["kwargs"]["allow_redirects"] is False
    assert call["url"].startswith("https://ps.compliance.protection.outlook.com/adminapi/beta/contoso.onmicrosoft.com/EXOBanner")
    http = FakeHttp(FakeResponse(302, headers={"Location": "https://eur03b.admin.protection.outlook.com:446/AdminApi/v1.0/x"}))
    assert client(http).discover_scc_base("https://ps.compliance.protection.outlook.com") == \
        "https://eur03b.ps.compliance.protection.outlook.com"
    http = FakeHttp(FakeResponse(302, headers={"Location": "https://127.0.0.5:8443/adminapi/beta/x"}))
    assert client(http).discover_scc_base("https://127.0.0.4") == "https://127.0.0.5:8443"
    assert client(FakeHttp(FakeResponse(200, {}))).discover_scc_base("https://scc.example") is None
    with pytest.raises(ExoAuthError):
        client(FakeHttp(FakeResponse(401, {"error": {"code": "x", "message": "no"}}))).discover_scc_base("https://s.example")


def test_tenant_required():
    with pytest.raises(ExoConfigError, match="organization"):
        _exo.ExoClient(FakeHttp(), "AUTH", BASE, None, ANCHOR)


def test_transport_failure_names_the_cmdlet_and_page():
    class Failing(FakeHttp):
        def request(self, method, url, **kwargs):
            if self.calls:
                raise ExoHttpError("POST %s failed with HTTP 500 after 6 attempts: boom" % url, status=500,
                                   details={"attempts": 6})
            return FakeHttp.request(self, method, url, **kwargs)

    http = Failing(page([mbx(1)], URL + "?$skiptoken=a"))
    with pytest.raises(ExoHttpError, match="Get-Mailbox failed on page 2: POST .* HTTP 500") as info:
        list(client(http).invoke("Get-Mailbox", result_size="unlimited"))
    assert info.value.status == 500 and info.value.details == {"attempts": 6, "cmdlet": "Get-Mailbox", "page": 2}


def test_shared_values_share_repeated_strings_until_a_property_varies_too_much():
    shared = _exo.SharedValues(limit=2)
    first = shared.share({"Org": "".join(["con", "toso"]), "Name": "a", "Size": 1})
    second = shared.share({"Org": "".join(["cont", "oso"]), "Name": "b", "Size": 1})
    assert first["Org"] is second["Org"]
    third = shared.share({"Org": "contoso", "Name": "c"})  # a third distinct Name: Name is no longer shared
    assert third == {"Org": "contoso", "Name": "c"} and "Name" in shared._skip
    assert shared.share({"Name": "a"}) == {"Name": "a"}
