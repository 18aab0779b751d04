# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_graph.py: the Graph client against a fake HTTP layer, and the CIDR rules."""

from __future__ import annotations

import json

import pytest

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _graph
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoConfigError, ExoServiceError

BASE = "https://graph.example"
COLLECTION = BASE + "/v1.0/identity/conditionalAccess/namedLocations"


class FakeResponse:
    def __init__(self, status, body=None, text=None):
        self.status_code = status
        self._body = body
        self.text = text if text is not None else ("" if body is None else json.dumps(body))
        self.reason = "reason"

    def json(self):
        if self._body is None:
            return json.loads(self.text)
        return self._body


class FakeHttp:
    """Answers scripted responses in order and records what was asked."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls = []

    def request(self, method, url, headers=None, json=None, params=None, auth=None, **kwargs):
        self.calls.append({"method": method, "url": url, "json": json, "params": params, "auth": auth})
        return self.responses.pop(0)

    @staticmethod
    def redact(text):
        return text.replace("SECRET", "<redacted>")


def _loc(name, *cidrs, **extra):
    loc = {"@odata.type": _graph.IP_NAMED_LOCATION, "id": "id-" + name, "displayName": name, "isTrusted": True,
           "ipRanges": [{"@odata.type": _graph.IPV6_RANGE if ":" in c else _graph.IPV4_RANGE, "cidrAddress": c}
                        for c in cidrs]}
    loc.update(extra)
    return loc


def test_list_follows_next_link_with_ip_filter():
    http = FakeHttp(
        FakeResponse(200, {"value": [_loc("a", "203.0.113.0/24")], "@odata.nextLink": COLLECTION + "?$skiptoken=x"}),
        FakeResponse(200, {"value": [_loc("b", "198.51.100.0/24")]}),
    )
    client = _graph.GraphClient(http, "AUTH", BASE + "/")
    names = [loc["displayName"] for loc in client.list_ip_named_locations()]
    assert names == ["a", "b"]
    assert http.calls[0]["url"] == COLLECTION
    assert http.calls[0]["params"] == {"$filter": "isof('microsoft.graph.ipNamedLocation')"}
    # The next link carries its own query; the auth object goes with every request.
    assert http.calls[1]["url"] == COLLECTION + "?$skiptoken=x" and http.calls[1]["params"] is None
    assert all(call["auth"] == "AUTH" for call in http.calls)


def test_list_refuses_next_link_to_another_host():
    http = FakeHttp(FakeResponse(200, {"value": [], "@odata.nextLink": "https://evil.example/v1.0/x?$skiptoken=1"}))
    with pytest.raises(ExoServiceError, match="unusable @odata.nextLink"):
        _graph.GraphClient(http, None, BASE).list_ip_named_locations()
    assert len(http.calls) == 1


def test_list_refuses_repeated_next_link():
    page = {"value": [_loc("a", "203.0.113.0/24")], "@odata.nextLink": COLLECTION + "?$skiptoken=same"}
    http = FakeHttp(FakeResponse(200, page), FakeResponse(200, page))
    with pytest.raises(ExoServiceError, match="unusable"):
        _graph.GraphClient(http, None, BASE).list_named_locations()


def test_update_always_sends_odata_type():
    http = FakeHttp(FakeResponse(204, text=""))
    _graph.GraphClient(http, None, BASE).update_named_location("abc", {"isTrusted": False})
    call = http.calls[0]
    assert call["method"] == "PATCH" and call["url"] == COLLECTION + "/abc"
    assert call["json"] == {"@odata.type": "#microsoft.graph.ipNamedLocation", "isTrusted": False}


def test_create_get_delete():
    created = dict(_loc("new", "203.0.113.0/24"), createdDateTime="t", modifiedDateTime="t")
    http = FakeHttp(FakeResponse(201, dict(created, **{"@odata.context": "ctx"})),
                    FakeResponse(200, dict(created, **{"@odata.context": "ctx"})),
                    FakeResponse(204, text=""))
    client = _graph.GraphClient(http, None, BASE)
    assert client.create_named_location({"displayName": "new"}) == created
    assert http.calls[0]["json"]["@odata.type"] == "#microsoft.graph.ipNamedLocation"
    assert client.get_named_location("id-new") == created
    client.delete_named_location("id-new")
    assert [c["method"] for c in http.calls] == ["POST", "GET", "DELETE"]
    assert client.requests == 3


def _graph_error(status, code, message):
    return FakeResponse(status, {"error": {"code": code, "message": message, "innerError": {"request-id": "rid"}}})


def test_403_names_the_missing_permission():
    http = FakeHttp(_graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."))
    with pytest.raises(ExoServiceError) as info:
        _graph.GraphClient(http, None, BASE).create_named_location({"displayName": "x"})
    err = info.value
    assert err.status == 403 and err.code == "Authorization_RequestDenied"
    assert "Policy.ReadWrite.ConditionalAccess" in err.message
    assert "Insufficient privileges to complete the operation." in err.message
    assert err.details == {"operation": "create named location 'x'", "request_id": "rid",
                           "missing_permission": "Policy.ReadWrite.ConditionalAccess"}


def test_403_on_read_names_both_permissions():
    http = FakeHttp(_graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."))
    with pytest.raises(ExoServiceError) as info:
        _graph.GraphClient(http, None, BASE).list_ip_named_locations()
    assert "Policy.Read.All or Policy.ReadWrite.ConditionalAccess" in info.value.message
    assert info.value.details["missing_permission"] == "Policy.Read.All"


def test_other_errors_keep_graph_code_and_message():
    http = FakeHttp(_graph_error(400, "BadRequest", "Locations marked as trusted can't be deleted."),
                    _graph_error(404, "itemNotFound", "not found"),
                    _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."),
                    FakeResponse(500, text="<html>SECRET</html>"))
    client = _graph.GraphClient(http, None, BASE)
    with pytest.raises(ExoServiceError) as info:
        client.delete_named_location("x")
    assert info.value.code == "BadRequest" and "can't be deleted" in info.value.message
    with pytest.raises(ExoServiceError) as info:
        client.get_named_location("x")
    assert info.value.status == 404 and info.value.code == "itemNotFound"
    with pytest.raises(ExoServiceError) as info:
        client.list_named_locations()
    assert "graph_uri" in info.value.message and info.value.code == "InvalidAuthenticationToken"
    with pytest.raises(ExoServiceError) as info:
        client.list_named_locations()
    assert "SECRET" not in info.value.message and "<redacted>" in info.value.message


def test_non_json_success_is_a_clear_error():
    http = FakeHttp(FakeResponse(200, text="<html>portal</html>"))
    with pytest.raises(ExoServiceError, match="not JSON; check graph_uri"):
        _graph.GraphClient(http, None, BASE).list_named_locations()


# --- CIDR rules -----------------------------------------------------------------------------------

GOOD = [
    ("203.0.113.5", "203.0.113.5/32"),
    (" 203.0.113.0/24 ", "203.0.113.0/24"),
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1/128"),
    ("2001:0db8:0000:0000::/64", "2001:db8::/64"),
    ("2001:0:9d38:90d6:0:0:0:0/63", "2001:0:9d38:90d6::/63"),
    ("12.128.0.0/9", "12.128.0.0/9"),
    ("2400::/9", "2400::/9"),
]


@pytest.mark.parametrize("value, expected", GOOD)
def test_good_ranges_are_canonical(value, expected):
    ranges, warnings = _graph.normalize_ranges([value])
    assert ranges == [expected] and warnings == []


# Every bad value fails with a message naming its position and what to do.
BAD = [
    ("", "an empty value is not an IP range"),
    ("not-an-ip", "'not-an-ip': address ranges with '-'"),
    ("datacenter", "'datacenter' is not a valid IPv4 or IPv6 address or CIDR range"),
    ("300.1.2.3", "'300.1.2.3' is not a valid IPv4 or IPv6 address or CIDR range"),
    ("192.0.2", "'192.0.2' is not a valid"),
    ("10.0.0.0/8", "the prefix /8 is too short"),
    ("0.0.0.0/0", "the prefix /0 is too short"),
    ("::/0", "the prefix /0 is too short"),
    ("2000::/3", "the prefix /3 is too short"),
    ("192.0.2.0/33", "/33 is longer than an IPv4 address (/32)"),
    ("2001:db8::/129", "/129 is longer than an IPv6 address (/128)"),
    ("192.0.2.7/24", "has host bits set; use 192.0.2.0/24 for the whole network or 192.0.2.7/32"),
    ("2001:db8::1/64", "has host bits set; use 2001:db8::/64 for the whole network or 2001:db8::1/128"),
    ("192.0.2.0/abc", "the prefix length 'abc' is not a number"),
    ("192.0.2.0/-1", "the prefix length '-1' is not a number"),
    ("192.0.2.0/", "the prefix length '' is not a number"),
    ("192.0.2.0/24/25", "exactly one '/prefix'"),
    ("1.2.3.4-1.2.3.10", "address ranges with '-' are not supported"),
    ("2001:db8:::1", "'2001:db8:::1' is not a valid"),
    ("fe80::1%eth0", "zone index"),
    ("192.0.2.0 /24", "'192.0.2.0 ' is not a valid IPv4 or IPv6 address"),
]


@pytest.mark.parametrize("value, fragment", BAD)
def test_bad_ranges_fail_with_their_own_message(value, fragment):
    with pytest.raises(ExoConfigError) as info:
        _graph.normalize_ranges(["203.0.113.0/24", value])
    assert fragment in info.value.message
    assert info.value.message.startswith("ip_ranges[1]")


def test_bad_messages_are_distinct():
    messages = set()
    for value, _fragment in BAD:
        with pytest.raises(ExoConfigError) as info:
            _graph.normalize_ranges([value])
        messages.add(info.value.message)
    assert len(messages) == len(BAD)


def test_too_many_ranges():
    many = ["100.%d.%d.0/24" % (i // 256, i % 256) for i in range(2001)]
    with pytest.raises(ExoConfigError, match="2001 distinct ranges; an Entra ID named location holds at most 2000"):
        _graph.normalize_ranges(many)
    ranges, _warnings = _graph.normalize_ranges(many[:2000] + many[:5])
    assert len(ranges) == 2000


def test_duplicates_overlaps_and_internal_ranges_are_warnings():
    ranges, warnings = _graph.normalize_ranges(
        ["203.0.113.0/24", "203.0.113.9", "203.0.113.0/24", "10.20.0.0/16", "2001:db8::/32", "2001:db8:1::/48"])
    assert ranges == ["203.0.113.0/24", "203.0.113.9/32", "10.20.0.0/16", "2001:db8::/32", "2001:db8:1::/48"]
    assert warnings == [
        "ip_ranges[2] '203.0.113.0/24' repeats ip_ranges[0] (203.0.113.0/24); the duplicate is ignored.",
        "ip_ranges: 10.20.0.0/16 is not public: Entra ID sees the public egress address of a network, never its internal "
        "addresses, so it will not match sign-ins.",
        "ip_ranges: 2 ranges are contained in another range (203.0.113.9/32 in 203.0.113.0/24, 2001:db8:1::/48 in "
        "2001:db8::/32); both are kept, but the narrower one adds nothing.",
    ]


def test_overlap_sweep_handles_a_full_location():
    # 1999 disjoint /32s plus one /24 that holds 256 of them: one summarised warning, found by one sweep.
    hosts = ["11.64.%d.%d" % (i // 256, i % 256) for i in range(1999)]
    ranges, warnings = _graph.normalize_ranges(hosts + ["11.64.0.0/24"])
    assert len(ranges) == 2000
    assert warnings == ["ip_ranges: 256 ranges are contained in another range (11.64.0.0/32 in 11.64.0.0/24, "
                        + ", ".join("11.64.0.%d/32 in 11.64.0.0/24" % i for i in range(1, 10))
                        + " and 246 more); both are kept, but the narrower one adds nothing."]


def test_many_internal_ranges_make_one_warning():
    _ranges, warnings = _graph.normalize_ranges(["192.168.%d.0/24" % i for i in range(12)])
    assert len(warnings) == 1 and "192.168.9.0/24 and 2 more are not public" in warnings[0]


def test_overlap_warnings_only_for_new_ranges():
    existing = ["203.0.113.0/24", "203.0.113.7/32"]
    assert _graph.overlap_warnings(existing + ["198.51.100.0/24"], new=["198.51.100.0/24"]) == []
    assert len(_graph.overlap_warnings(existing + ["203.0.113.64/26"], new=["203.0.113.64/26"])) == 1
    # Both new: already reported by normalize_ranges.
    assert _graph.overlap_warnings(["198.51.100.0/24", "198.51.100.0/25"], new=["198.51.100.0/24", "198.51.100.0/25"]) == []


def test_comparison_is_order_insensitive_and_canonical():
    held = _graph.canonical_existing([{"cidrAddress": "12.34.221.11/22"}, {"cidrAddress": "2001:0:9d38:90d6:0:0:0:0/63"}])
    assert held == ["12.34.220.0/22", "2001:0:9d38:90d6::/63"]
    assert _graph.same_ranges(held, ["2001:0:9d38:90d6::/63", "12.34.220.0/22"])
    assert not _graph.same_ranges(held, ["12.34.220.0/22"])


def test_range_body_and_result():
    assert _graph.range_body("2001:db8::/48") == {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8::/48"}
    assert _graph.range_body("203.0.113.0/24")["@odata.type"] == "#microsoft.graph.iPv4CidrRange"
    result = _graph.location_result(dict(_loc("dc", "203.0.113.0/24"), createdDateTime="c", modifiedDateTime="m"))
    assert result == {"id": "id-dc", "display_name": "dc", "is_trusted": True, "ip_ranges": ["203.0.113.0/24"],
                      "created_date_time": "c", "modified_date_time": "m"}
    assert _graph.location_result(None) == {}
