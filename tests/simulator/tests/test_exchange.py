# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's Exchange Online InvokeCommand and Security & Compliance hosts, driven with requests.

An in-process listener on its own loopback address, tokens signed by the simulator's own key with the
claims the simulated Entra ID puts in app-only and delegated tokens.
"""

from __future__ import annotations

import json
import random

import pytest
import requests

from tests.simulator import core, directory, exchange, tenant, tls

FULL_ROLES = ("Exchange.ManageAsApp",)
EXCHANGE_ADMIN = core.ROLE_EXCHANGE_ADMINISTRATOR


class ExchangeHarness:
    """Exchange + SCC generic + SCC regional listeners in this process, with a token factory."""

    def __init__(self, tmp_path, mailboxes=2500):
        address = "127.%d.%d.%d" % (random.randint(100, 250), random.randint(0, 255), random.randint(2, 250))
        self.sim = core.Sim(tmp_path, mailboxes=mailboxes,
                            addresses={"entra": address, "exchange": address, "graph": address, "scc": address,
                                       "scc_regional": address})
        self.sim.directory = directory.Directory(self.sim)
        self.ca_path, cert, key = tls.generate(str(tmp_path), [address])
        self.sim.tls_context = tls.server_context(cert, key)
        self.service = exchange.ExchangeService(self.sim)
        self.listener = core.Listener(self.sim, address, 0, [self.service]).start()
        self.regional = core.Listener(self.sim, address, 0, [exchange.ComplianceRegionalService(self.sim)]).start()
        self.regional_base = "https://%s:%d" % (address, self.regional.port)
        self.generic = core.Listener(self.sim, address, 0,
                                     [exchange.ComplianceService(self.sim, self.regional_base)]).start()
        self.generic_base = "https://%s:%d" % (address, self.generic.port)
        self.base = "https://%s:%d" % (address, self.listener.port)
        self.url = "%s/adminapi/beta/%s/InvokeCommand" % (self.base, self.sim.organization)
        self.session = requests.Session()

    def token(self, roles=FULL_ROLES, wids=(EXCHANGE_ADMIN,), aud="https://outlook.office365.com", tid=None,
              lifetime=None, user=None):
        claims = {"aud": aud, "tid": tid or self.sim.tenant_id, "appid": "app-id", "wids": list(wids)}
        if user:
            claims.update({"idtyp": "user", "upn": user, "scp": "Exchange.Manage"})
        else:
            claims["idtyp"] = "app"
            if roles:
                claims["roles"] = list(roles)
        return self.sim.tokens.issue(claims, lifetime=lifetime)[0]

    def headers(self, token=None, page_size=None, anchor=True):
        headers = {"Authorization": "Bearer " + (token or self.token()), "Content-Type": "application/json",
                   "X-ResponseFormat": "json"}
        if anchor:
            headers["X-AnchorMailbox"] = "UPN:%s@%s" % (exchange.SYSTEM_MAILBOX, self.sim.organization)
        if page_size:
            headers["Prefer"] = "odata.maxpagesize=%d" % page_size
        return headers

    def invoke(self, cmdlet, parameters=None, url=None, select=None, **kwargs):
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}}
        params = {"$select": ",".join(select)} if select else None
        return self.session.post(url or self.url, params=params, data=json.dumps(body),
                                 headers=self.headers(**kwargs), verify=self.ca_path, timeout=30)

    def pages(self, cmdlet, parameters=None, select=None, page_size=1000, **kwargs):
        """Every page, following @odata.nextLink with the same body (ref §7)."""
        resp = self.invoke(cmdlet, parameters, select=select, page_size=page_size, **kwargs)
        out = []
        while True:
            assert resp.status_code == 200, resp.text
            doc = resp.json()
            out.append(doc)
            link = doc.get("@odata.nextLink")
            if not link:
                return out
            resp = self.invoke(cmdlet, parameters, url=link, page_size=page_size, **kwargs)

    def stop(self):
        self.session.close()
        for listener in (self.listener, self.regional, self.generic):
            listener.stop()


@pytest.fixture
def x(tmp_path):
    harness = ExchangeHarness(tmp_path)
    yield harness
    harness.stop()


def _detail(resp):
    return resp.json()["error"]["details"][0]["message"].split("|", 2)


def test_pages_2500_mailboxes_in_pages_of_1000(x):
    pages = x.pages("Get-Mailbox", {"ResultSize": "Unlimited"}, select=list(tenant.MINIMUM))
    assert [len(p["value"]) for p in pages] == [1000, 1000, 500]
    guids = {item["Guid"] for p in pages for item in p["value"]}
    assert len(guids) == 2500
    first = pages[0]["value"][0]
    assert first["Guid@data.type"] == "System.Guid"
    assert first["EmailAddresses@odata.type"] == "#Collection(String)"
    assert set(k for k in first if "@" not in k) == set(tenant.MINIMUM)
    assert pages[0]["@odata.context"].endswith("$metadata#Collection(Exchange.GenericHashTable)")
    assert pages[0]["adminapi.warnings@odata.type"] == "#Collection(String)"
    assert all(p["@adminapi.warnings"] == [] for p in pages)
    assert pages[0]["@odata.nextLink"].startswith(x.base + "/adminapi/beta/")
    assert x.sim.counters.get("invoke_command", "Get-Mailbox") == 3


def test_page_size_and_result_size(x):
    pages = x.pages("Get-Mailbox", {"ResultSize": 1500}, select=["Alias"], page_size=400)
    assert [len(p["value"]) for p in pages] == [400, 400, 400, 300]
    assert pages[-1]["@adminapi.warnings"] == [exchange.WARN_MORE_RESULTS]
    assert all(p["@adminapi.warnings"] == [] for p in pages[:-1])
    # Default ResultSize is 1000, with the cmdlet's own warning.
    pages = x.pages("Get-Mailbox", select=["Alias"])
    assert [len(p["value"]) for p in pages] == [1000]
    assert pages[0]["@adminapi.warnings"] == [exchange.WARN_DEFAULT_RESULT_SIZE]
    # ResultSize that covers everything: no warning.
    pages = x.pages("Get-Mailbox", {"ResultSize": 2500}, select=["Alias"])
    assert sum(len(p["value"]) for p in pages) == 2500
    assert all(p["@adminapi.warnings"] == [] for p in pages)
    # A page size above the maximum is capped at 1000.
    assert len(x.invoke("Get-Mailbox", {"ResultSize": "Unlimited"}, page_size=5000).json()["value"]) == 1000


def test_full_objects_and_display_strings(x):
    item = x.invoke("Get-Mailbox", {"Identity": "shared.support5"}).json()["value"][0]
    assert len([k for k in item if "@" not in k]) > 150
    assert item["ProhibitSendQuota"] == "49.5 GB (53,150,220,288 bytes)"
    assert item["AuditLogAgeLimit"] == "90.00:00:00"
    assert item["RecipientTypeDetails"] == "SharedMailbox"
    assert item["WhenMailboxCreated@data.type"] == "System.DateTime"


def test_identity_forms_and_not_found(x):
    first = x.invoke("Get-Mailbox", {"ResultSize": 1}, select=["Guid", "PrimarySmtpAddress", "Alias"]).json()["value"][0]
    for identity in (first["Guid"], first["PrimarySmtpAddress"], first["Alias"].upper()):
        value = x.invoke("Get-Mailbox", {"Identity": identity}, select=["Alias"]).json()["value"]
        assert [v["Alias"] for v in value] == [first["Alias"]]
    resp = x.invoke("Get-Mailbox", {"Identity": "nobody@contoso.com"})
    assert resp.status_code == 404
    error_id, exc_type, text = _detail(resp)
    assert exc_type.endswith("ManagementObjectNotFoundException")
    assert "'nobody@contoso.com' couldn't be found" in text
    assert resp.json()["error"]["message"] == "Error executing cmdlet"


def test_filters_and_recipient_type_details(x):
    pages = x.pages("Get-Mailbox", {"ResultSize": "Unlimited", "Filter": "RecipientTypeDetails -eq 'SharedMailbox'"},
                    select=["RecipientTypeDetails"])
    shared = [i for p in pages for i in p["value"]]
    assert shared and all(i["RecipientTypeDetails"] == "SharedMailbox" for i in shared)
    pages = x.pages("Get-Mailbox", {"ResultSize": "Unlimited", "RecipientTypeDetails": ["RoomMailbox", "EquipmentMailbox"]},
                    select=["RecipientTypeDetails"])
    kinds = {i["RecipientTypeDetails"] for p in pages for i in p["value"]}
    assert kinds == {"RoomMailbox", "EquipmentMailbox"}
    value = x.invoke("Get-Mailbox", {"Filter": "(Alias -like 'room.*') -and -not (ResourceCapacity -eq $null)",
                                     "ResultSize": "Unlimited"}, select=["Alias"]).json()["value"]
    assert value and all(v["Alias"].startswith("room.") for v in value)
    resp = x.invoke("Get-Mailbox", {"Filter": "Alias -eq"})
    assert resp.status_code == 400
    assert "Invalid filter syntax" in _detail(resp)[2]
    resp = x.invoke("Get-Mailbox", {"Filter": "Bogus -eq 'x'"})
    assert "is not a recognized filterable property" in _detail(resp)[2]


def test_unknown_cmdlet_and_parameter(x):
    resp = x.invoke("Get-Mailboxx")
    assert resp.status_code == 400
    exc_type, text = _detail(resp)[1:]
    assert exc_type == "System.Management.Automation.CommandNotFoundException"
    assert text.startswith("The term 'Get-Mailboxx' is not recognized as a name of a cmdlet")
    resp = x.invoke("Get-Mailbox", {"Bogus": 1})
    assert _detail(resp)[0] == "NamedParameterNotFound"
    resp = x.invoke("Get-Mailbox", {"ResultSize": "lots"})
    assert "ResultSize" in _detail(resp)[2]


def test_other_cmdlets(x):
    org = x.invoke("get-organizationconfig").json()["value"]
    assert len(org) == 1 and org[0]["Name"] == x.sim.organization and org[0]["Guid@data.type"] == "System.Guid"
    domains = x.invoke("Get-AcceptedDomain").json()["value"]
    assert {d["DomainName"] for d in domains} >= {"contoso.onmicrosoft.com", "contoso.com"}
    recipients = x.pages("Get-Recipient", {"ResultSize": "Unlimited"})
    assert sum(len(p["value"]) for p in recipients) == 2500
    assert "RecipientType" in recipients[0]["value"][0]


def test_set_mailbox_writes_and_no_change_warning(x):
    params = {"Identity": "shared.support5", "ProhibitSendQuota": "40GB", "AuditEnabled": True,
              "GrantSendOnBehalfTo": {"@odata.type": "#Exchange.GenericHashTable", "add": ["shared.support5"]}}
    resp = x.invoke("Set-Mailbox", params)
    assert resp.status_code == 200, resp.text
    assert resp.json()["value"] == [] and resp.json()["@adminapi.warnings"] == []
    assert x.sim.counters.get("writes", "exchange") == 1
    item = x.invoke("Get-Mailbox", {"Identity": "shared.support5"}, select=["ProhibitSendQuota", "GrantSendOnBehalfTo"]).json()["value"][0]
    assert item["ProhibitSendQuota"] == "40 GB (42,949,672,960 bytes)"
    assert item["GrantSendOnBehalfTo"] == ["shared.support5"]
    resp = x.invoke("Set-Mailbox", params)
    assert resp.json()["@adminapi.warnings"] == [exchange.WARN_NO_CHANGE % "shared.support5"]
    assert x.sim.counters.get("writes", "exchange") == 1
    resp = x.invoke("Set-Mailbox", {"Identity": "shared.support5", "AuditEnabled": "yes"})
    assert resp.status_code == 400 and "Boolean parameters accept only" in _detail(resp)[2]
    resp = x.invoke("Set-Mailbox", {"Identity": "nobody", "AuditEnabled": True})
    assert resp.status_code == 404
    # Control route: the mailbox's state, and a reset.
    control = x.service.control(core.Request("GET", "/exchange/mailboxes/shared.support5", {}, "", {}, b"",
                                             "127.0.0.1:1", "http", {}, None))
    assert json.loads(control.body)["ProhibitSendQuota"].startswith("40 GB")
    x.service.control(core.Request("POST", "/exchange/reset", {}, "", {}, b"", "127.0.0.1:1", "http", {}, None))
    item = x.invoke("Get-Mailbox", {"Identity": "shared.support5"}, select=["ProhibitSendQuota"]).json()["value"][0]
    assert item["ProhibitSendQuota"].startswith("49.5 GB")


def test_token_and_request_validation(x):
    assert x.invoke("Get-OrganizationConfig", token=x.token(roles=[])).status_code == 401
    resp = x.invoke("Get-OrganizationConfig", token=x.token(wids=()))
    assert resp.status_code == 403 and "isn't supported in this scenario" in _detail(resp)[2]
    assert x.invoke("Get-OrganizationConfig", token=x.token(lifetime=-10)).status_code == 401
    assert x.invoke("Get-OrganizationConfig", token=x.token(aud="https://graph.microsoft.com")).status_code == 401
    assert x.invoke("Get-OrganizationConfig", token=x.token(aud=x.sim.origin("exchange"))).status_code == 200
    other = x.sim.directory.customer.tenant_id
    assert x.invoke("Get-OrganizationConfig", token=x.token(tid=other)).status_code == 401
    guid_url = "%s/adminapi/beta/%s/InvokeCommand" % (x.base, x.sim.tenant_id)
    assert x.invoke("Get-OrganizationConfig", url=guid_url).status_code == 200
    customer_url = "%s/adminapi/beta/%s/InvokeCommand" % (x.base, x.sim.directory.customer.name)
    resp = x.invoke("Get-Mailbox", {"ResultSize": "Unlimited"}, url=customer_url, token=x.token(tid=other))
    assert resp.status_code == 200 and len(resp.json()["value"]) == 50
    assert x.invoke("Get-OrganizationConfig", anchor=False).status_code == 400
    resp = x.session.post(x.url, data=json.dumps({"Cmdlet": "Get-Mailbox"}), headers=x.headers(), verify=x.ca_path)
    assert resp.status_code == 400
    # Delegated admin; a reader role does not see Set-Mailbox at all.
    admin = x.token(user="admin@contoso.onmicrosoft.com")
    assert x.invoke("Get-OrganizationConfig", token=admin).status_code == 200
    reader = x.token(user="reader@contoso.onmicrosoft.com", wids=(core.ROLE_GLOBAL_READER,))
    resp = x.invoke("Set-Mailbox", {"Identity": "shared.support5", "AuditEnabled": False}, token=reader)
    assert _detail(resp)[1].endswith("CommandNotFoundException")


def test_security_compliance_redirect_and_cmdlets(x):
    url = "%s/adminapi/beta/%s/InvokeCommand" % (x.generic_base, x.sim.organization)
    token = x.token(aud="https://ps.compliance.protection.outlook.com")
    resp = x.session.post(url, data="{}", headers=x.headers(token), verify=x.ca_path, allow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "%s/adminapi/beta/%s/InvokeCommand" % (x.regional_base, x.sim.organization)
    regional = resp.headers["Location"]
    value = x.invoke("Get-RetentionCompliancePolicy", url=regional, token=token).json()["value"]
    assert "Default Mailbox Retention" in {v["Name"] for v in value}
    assert x.invoke("Get-Label", {"Identity": "Confidential"}, url=regional, token=token).json()["value"][0]["Priority"] == 2
    assert x.invoke("Get-Mailbox", url=regional, token=token).status_code == 400
    # An Exchange token is not valid for Security & Compliance.
    assert x.invoke("Get-Label", url=regional).status_code == 401


def test_skiptoken_bound_to_body(x):
    first = x.invoke("Get-Mailbox", {"ResultSize": "Unlimited"}, select=["Alias"]).json()
    resp = x.invoke("Get-Mailbox", {"ResultSize": 5000}, url=first["@odata.nextLink"])
    assert resp.status_code == 400


def test_tenant_is_deterministic_and_lazy():
    a = tenant.Tenant(7, "contoso.onmicrosoft.com", 100000)
    b = tenant.Tenant(7, "contoso.onmicrosoft.com", 100000)
    assert a.mailbox(99999) == b.mailbox(99999)
    assert a.mailbox(5) != tenant.Tenant(8, "contoso.onmicrosoft.com", 10).mailbox(5)
    assert a.overrides == {}
    assert tenant.format_bytes(106300440576) == "99 GB (106,300,440,576 bytes)"
    assert tenant.parse_timespan("90") == "90.00:00:00"
