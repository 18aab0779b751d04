# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exo_trusted_ips against a fake HTTP layer that keeps named locations in memory like Graph does."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _graph
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import ExoModule
from ansible_collections.m365ops.exchange_online.plugins.modules import exo_trusted_ips
from ansible_collections.m365ops.exchange_online.tests.unit.plugins.modules._helpers import FakeHttp, FakeResponse, module_args, patch_exit, run_module

BASE = "https://graph.example"
COLLECTION = BASE + "/v1.0/identity/conditionalAccess/namedLocations"


class FakeGraph(FakeHttp):
    """The HTTP layer GraphClient talks to: an in-memory tenant with Graph's rules and 2 locations per page."""

    def __init__(self, locations=(), write_permission=True):
        self.locations = [copy.deepcopy(loc) for loc in locations]
        self.calls = []
        self.write_permission = write_permission
        self.next_id = 1

    def request(self, method, url, headers=None, json=None, params=None, auth=None, **kwargs):
        self.calls.append((method, url.split("?")[0], copy.deepcopy(json)))
        if method != "GET" and not self.write_permission:
            return FakeResponse(403, {"error": {"code": "Authorization_RequestDenied",
                                                "message": "Insufficient privileges to complete the operation."}})
        path, _sep, query = url.partition("?")
        if path == COLLECTION and method == "GET":
            start = int(query.rsplit("=", 1)[1]) if query else 0
            flt = (params or {}).get("$filter") if not query else "isof" if "isof" in query else None
            items = [loc for loc in self.locations if not flt or loc["@odata.type"] == _graph.IP_NAMED_LOCATION]
            body = {"value": copy.deepcopy(items[start:start + 2])}
            if start + 2 < len(items):
                body["@odata.nextLink"] = COLLECTION + "?%s$skiptoken=%d" % ("isof&" if flt else "", start + 2)
            return FakeResponse(200, body)
        if path == COLLECTION and method == "POST":
            loc = dict(json, id="id-%d" % self.next_id, createdDateTime="c%d" % self.next_id, modifiedDateTime="m")
            self.next_id += 1
            self.locations.append(loc)
            return FakeResponse(201, copy.deepcopy(loc))
        loc_id = path.rsplit("/", 1)[1]
        loc = next((item for item in self.locations if item["id"] == loc_id), None)
        if loc is None:
            return FakeResponse(404, {"error": {"code": "itemNotFound", "message": "not found"}})
        if method == "GET":
            return FakeResponse(200, copy.deepcopy(loc))
        if method == "PATCH":
            assert json["@odata.type"] == _graph.IP_NAMED_LOCATION
            loc.update({k: v for k, v in json.items() if k != "@odata.type"}, modifiedDateTime="m2")
            return FakeResponse(204)
        if method == "DELETE":
            if loc.get("isTrusted"):
                return FakeResponse(400, {"error": {"code": "BadRequest", "message": "untrust first"}})
            self.locations.remove(loc)
            return FakeResponse(204)
        raise AssertionError(method)

    def writes(self):
        return [(method, url) for method, url, _body in self.calls if method != "GET"]


def _ip_loc(loc_id, name, cidrs, trusted=True):
    return {"@odata.type": _graph.IP_NAMED_LOCATION, "id": loc_id, "displayName": name, "isTrusted": trusted,
            "createdDateTime": "c", "modifiedDateTime": "m",
            "ipRanges": [{"@odata.type": _graph.IPV6_RANGE if ":" in c else _graph.IPV4_RANGE, "cidrAddress": c}
                         for c in cidrs]}


SEED = [
    {"@odata.type": "#microsoft.graph.countryNamedLocation", "id": "country", "displayName": "Datacenter",
     "countriesAndRegions": ["US"]},
    _ip_loc("guest", "Guest Wi-Fi", ["198.51.100.0/24"], trusted=False),
    _ip_loc("other", "Other", ["192.0.2.0/24"]),
]


@pytest.fixture
def run(monkeypatch):
    state = {}

    # The module's warnings are recorded here, not in ansible's process-wide list, so no test sees another's.
    def warn(self, warning):
        state["warnings"].append(warning)

    def graph_client(self):
        state["graph_client_built"] = True
        return _graph.GraphClient(state["http"], None, BASE)

    monkeypatch.setattr(ExoModule, "warn", warn)
    patch_exit(monkeypatch, warnings=lambda: state["warnings"])
    monkeypatch.setattr(ExoModule, "graph_client", graph_client)

    def _run(fake, check_mode=False, diff=False, **args):
        state["http"] = fake
        state["graph_client_built"] = False
        state["warnings"] = []
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        result = run_module(monkeypatch, exo_trusted_ips.main, args)
        result["_client_built"] = state["graph_client_built"]
        return result

    return _run


def test_create_check_then_real_then_idempotent(run):
    fake = FakeGraph(SEED)
    ranges = ["203.0.113.0/26", "2001:DB8:4006::/48", "198.51.100.17"]
    result = run(fake, check_mode=True, diff=True, name="Datacenter", ip_ranges=ranges)
    assert result["changed"] and not result["_failed"]
    assert result["named_location"]["id"] == _graph.PLACEHOLDER_ID
    assert result["named_location"]["ip_ranges"] == ["203.0.113.0/26", "2001:db8:4006::/48", "198.51.100.17/32"]
    assert result["diff"]["before"] == {} and result["diff"]["after"]["is_trusted"] is True
    assert fake.writes() == []

    result = run(fake, name="Datacenter", ip_ranges=ranges)
    assert result["changed"] and result["named_location"]["id"] == "id-1"
    posted = [body for method, _url, body in fake.calls if method == "POST"][0]
    assert posted == {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Datacenter", "isTrusted": True,
                      "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/26"},
                                   {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8:4006::/48"},
                                   {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "198.51.100.17/32"}]}
    # The country location of the same name is not an IP named location: it is neither matched nor a duplicate.
    assert len(fake.writes()) == 1

    # Another order of the same ranges is no change.
    for check in (True, False):
        result = run(fake, check_mode=check, name="Datacenter", ip_ranges=list(reversed(ranges)))
        assert not result["changed"]
    assert len(fake.writes()) == 1


def test_append_adds_only_missing_ranges(run):
    fake = FakeGraph(SEED)
    result = run(fake, check_mode=True, diff=True, name="Other", ip_ranges=["192.0.2.0/24", "203.0.113.8"], append=True)
    assert result["changed"] and fake.writes() == []
    assert result["diff"]["before"]["ip_ranges"] == ["192.0.2.0/24"]
    assert result["diff"]["after"]["ip_ranges"] == ["192.0.2.0/24", "203.0.113.8/32"]
    result = run(fake, name="Other", ip_ranges=["192.0.2.0/24", "203.0.113.8"], append=True)
    assert result["changed"] and result["named_location"]["ip_ranges"] == ["192.0.2.0/24", "203.0.113.8/32"]
    patch = [body for method, _url, body in fake.calls if method == "PATCH"][0]
    assert patch == {"@odata.type": "#microsoft.graph.ipNamedLocation",
                     "ipRanges": [_graph.range_body("192.0.2.0/24"), _graph.range_body("203.0.113.8/32")]}
    assert not run(fake, name="Other", ip_ranges=["203.0.113.8"], append=True)["changed"]
    assert len(fake.writes()) == 1


def test_append_warns_about_overlap_with_existing(run):
    fake = FakeGraph(SEED)
    result = run(fake, name="Other", ip_ranges=["192.0.2.128/25"], append=True)
    assert result["changed"]
    assert any("192.0.2.128/25 in 192.0.2.0/24" in w for w in result["warnings"])


def test_replace_and_trust_change(run):
    fake = FakeGraph(SEED)
    result = run(fake, diff=True, name="Guest Wi-Fi", ip_ranges=["203.0.113.0/24"])
    assert result["changed"]
    patch = [body for method, _url, body in fake.calls if method == "PATCH"][0]
    assert patch["ipRanges"] == [_graph.range_body("203.0.113.0/24")] and patch["isTrusted"] is True
    assert result["named_location"]["is_trusted"] is True
    assert result["diff"]["before"]["is_trusted"] is False
    # Ranges left out: only the trust flag changes.
    result = run(fake, name="Guest Wi-Fi", trusted=False)
    patch = [body for method, _url, body in fake.calls if method == "PATCH"][-1]
    assert result["changed"] and patch == {"@odata.type": "#microsoft.graph.ipNamedLocation", "isTrusted": False}


def test_non_canonical_ranges_held_by_graph_compare_equal(run):
    fake = FakeGraph([_ip_loc("x", "Docs example", ["12.34.221.11/22"])])
    assert not run(fake, name="Docs example", ip_ranges=["12.34.220.0/22"])["changed"]
    assert fake.writes() == []


def test_absent_untrusts_then_deletes(run):
    fake = FakeGraph(SEED)
    result = run(fake, check_mode=True, diff=True, name="Other", state="absent")
    assert result["changed"] and result["named_location"] == {} and fake.writes() == []
    assert result["diff"]["before"]["id"] == "other" and result["diff"]["after"] == {}
    result = run(fake, name="Other", state="absent")
    assert result["changed"]
    assert fake.writes() == [("PATCH", COLLECTION + "/other"), ("DELETE", COLLECTION + "/other")]
    assert [body for method, _url, body in fake.calls if method == "PATCH"][0]["isTrusted"] is False
    for check in (True, False):
        assert not run(fake, check_mode=check, name="Other", state="absent")["changed"]
    # An untrusted location is deleted directly.
    run(fake, name="Guest Wi-Fi", state="absent")
    assert fake.writes()[-1] == ("DELETE", COLLECTION + "/guest") and fake.writes()[-2][0] == "DELETE"


def test_duplicate_names_fail(run):
    fake = FakeGraph(SEED + [_ip_loc("dup", "Other", ["203.0.113.0/24"])])
    result = run(fake, name="Other", ip_ranges=["203.0.113.0/24"])
    assert result["_failed"] and "There are 2 IP named locations named 'Other' (ids other, dup)" in result["msg"]
    assert result["details"] == {"ids": ["other", "dup"]}
    assert fake.writes() == []


def test_missing_write_permission_is_named(run):
    fake = FakeGraph(SEED, write_permission=False)
    result = run(fake, name="New", ip_ranges=["203.0.113.0/24"])
    assert result["_failed"] and result["status"] == 403 and result["code"] == "Authorization_RequestDenied"
    assert "Policy.ReadWrite.ConditionalAccess" in result["msg"]


def test_location_limit_checked_before_create(run):
    many = [_ip_loc("l%d" % i, "L%d" % i, ["11.0.%d.0/24" % i]) for i in range(195)]
    fake = FakeGraph(many)
    result = run(fake, name="One more", ip_ranges=["203.0.113.0/24"])
    assert result["_failed"] and "195 named locations, the most Entra ID allows" in result["msg"]
    assert fake.writes() == []


def test_create_needs_ranges(run):
    result = run(FakeGraph(SEED), name="Nope", trusted=True)
    assert result["_failed"] and "ip_ranges is required to create the named location 'Nope'" in result["msg"]


@pytest.mark.parametrize("args, fragment", [
    ({"name": " "}, "name must not be empty"),
    ({"name": "x" * 257, "ip_ranges": ["203.0.113.0/24"]}, "name is 257 characters long"),
    ({"name": "x", "ip_ranges": []}, "ip_ranges is empty"),
    ({"name": "x", "state": "absent", "ip_ranges": ["203.0.113.0/24"]}, "ip_ranges cannot be used with state=absent"),
    ({"name": "x", "ip_ranges": ["203.0.113.0/24", "10.0.0.0/8"]}, "ip_ranges[1] '10.0.0.0/8': the prefix /8 is too short"),
    ({"name": "x", "ip_ranges": ["192.0.2.7/24"]}, "ip_ranges[0] '192.0.2.7/24' has host bits set"),
])
def test_bad_options_fail_before_any_request(run, args, fragment):
    fake = FakeGraph(SEED)
    result = run(fake, **args)
    assert result["_failed"] and fragment in result["msg"]
    assert fake.calls == [] and not result["_client_built"]


@pytest.mark.parametrize("environment, graph_root", [
    ("O365Default", "https://graph.microsoft.com"),
    ("O365USGovGCCHigh", "https://graph.microsoft.us"),
    ("O365USGovDoD", "https://dod-graph.microsoft.us"),
    ("O365China", "https://microsoftgraph.chinacloudapi.cn"),
])
def test_graph_endpoint_of_each_cloud(monkeypatch, environment, graph_root):
    """The module's Graph client talks to the Graph root of the chosen cloud (no request is made here)."""
    args = {"name": "x", "exchange_environment_name": environment, "organization": "contoso.onmicrosoft.com",
            "access_token": "not-a-real-token", "auth_method": "access_token"}
    with module_args(monkeypatch, args):
        module = ExoModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True)
    client = module.graph_client()
    assert client.collection_url == graph_root + "/v1.0/identity/conditionalAccess/namedLocations"
    assert client.auth.resource == graph_root
