# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's Microsoft Graph named locations, driven with requests.

Two ways in: an in-process Graph listener with tokens signed by the simulator's own key (fast, covers
every validation and permission rule), and the whole simulator started as ``python -m tests.simulator``
with a token from real msal (client credentials, the ``full`` and ``no_graph_permission`` apps).
"""

from __future__ import annotations

import ipaddress
import json
import random
import urllib.request

import pytest
import requests

from tests.simulator import core, graph, tls

COLLECTION = "/v1.0/identity/conditionalAccess/namedLocations"
IP = "#microsoft.graph.ipNamedLocation"
V4 = "#microsoft.graph.iPv4CidrRange"
V6 = "#microsoft.graph.iPv6CidrRange"


def _ranges(*cidrs):
    return [{"@odata.type": V6 if ":" in c else V4, "cidrAddress": c} for c in cidrs]


class GraphHarness:
    """One Graph listener in this process, on its own loopback address, with a token factory."""

    def __init__(self, tmp_path):
        address = "127.%d.%d.%d" % (random.randint(100, 250), random.randint(0, 255), random.randint(2, 250))
        self.sim = core.Sim(tmp_path, addresses={"entra": address, "exchange": address, "graph": address,
                                                 "scc": address, "scc_regional": address})
        self.ca_path, cert, key = tls.generate(str(tmp_path), [address])
        self.sim.tls_context = tls.server_context(cert, key)
        self.service = graph.GraphService(self.sim)
        self.listener = core.Listener(self.sim, address, 0, [self.service]).start()
        self.base = "https://%s:%d" % (address, self.listener.port)
        self.session = requests.Session()

    def token(self, roles=("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"), scp=None, aud=None, lifetime=None):
        claims = {"aud": aud or "https://graph.microsoft.com", "tid": self.sim.tenant_id, "appid": "app"}
        if scp is not None:
            claims["scp"] = scp
        else:
            claims["roles"] = list(roles)
        return self.sim.tokens.issue(claims, lifetime=lifetime)[0]

    def call(self, method, path=COLLECTION, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not False:
            headers["Authorization"] = "Bearer " + (token or self.token())
        url = path if path.startswith("https://") else self.base + path
        return self.session.request(method, url, headers=headers, verify=self.ca_path, timeout=10, **kwargs)

    def create(self, name, cidrs, trusted=False, **kwargs):
        return self.call("POST", json={"@odata.type": IP, "displayName": name, "isTrusted": trusted,
                                       "ipRanges": _ranges(*cidrs)}, **kwargs)

    def stop(self):
        self.session.close()
        self.listener.stop()


@pytest.fixture
def g(tmp_path):
    harness = GraphHarness(tmp_path)
    yield harness
    harness.stop()


def _error(resp):
    body = resp.json()
    assert set(body) == {"error"}
    assert {"code", "message", "innerError"} <= set(body["error"])
    return body["error"]["code"], body["error"]["message"]


def test_seeded_locations_and_isof_filter(g):
    resp = g.call("GET")
    assert resp.status_code == 200
    body = resp.json()
    assert body["@odata.context"].endswith("#identity/conditionalAccess/namedLocations")
    types = sorted(loc["@odata.type"] for loc in body["value"])
    assert types == ["#microsoft.graph.countryNamedLocation", IP]
    resp = g.call("GET", params={"$filter": "isof('microsoft.graph.ipNamedLocation')"})
    assert [loc["displayName"] for loc in resp.json()["value"]] == ["Branch office guest Wi-Fi"]
    assert resp.json()["value"][0]["isTrusted"] is False


def test_create_get_patch_delete(g):
    resp = g.create("Datacenter egress", ["12.34.221.11/22", "2001:0:9d38:90d6:0:0:0:0/63"], trusted=True)
    assert resp.status_code == 201
    loc = resp.json()
    assert {"id", "createdDateTime", "modifiedDateTime"} <= set(loc)
    # Graph echoes ranges as sent, non-canonical ones included.
    assert [r["cidrAddress"] for r in loc["ipRanges"]] == ["12.34.221.11/22", "2001:0:9d38:90d6:0:0:0:0/63"]
    item = COLLECTION + "/" + loc["id"]
    got = g.call("GET", item).json()
    assert got["displayName"] == "Datacenter egress" and got["isTrusted"] is True

    # PATCH without @odata.type is refused; with it, 204 and no body; omitted properties keep their values.
    resp = g.call("PATCH", item, json={"ipRanges": _ranges("203.0.113.0/24")})
    assert resp.status_code == 400
    assert "@odata.type" in _error(resp)[1]
    resp = g.call("PATCH", item, json={"@odata.type": IP, "ipRanges": _ranges("203.0.113.0/24")})
    assert resp.status_code == 204 and resp.content == b""
    got = g.call("GET", item).json()
    assert [r["cidrAddress"] for r in got["ipRanges"]] == ["203.0.113.0/24"]
    assert got["isTrusted"] is True and got["displayName"] == "Datacenter egress"

    # A trusted location cannot be deleted; untrust first.
    resp = g.call("DELETE", item)
    assert resp.status_code == 400
    assert "trusted" in _error(resp)[1]
    assert g.call("PATCH", item, json={"@odata.type": IP, "isTrusted": False}).status_code == 204
    resp = g.call("DELETE", item)
    assert resp.status_code == 204
    resp = g.call("GET", item)
    assert resp.status_code == 404

    counters = g.sim.counters.snapshot()
    assert counters["graph"]["POST"] == 1 and counters["graph"]["PATCH"] == 3 and counters["graph"]["DELETE"] == 2
    writes = [(w["operation"], w["target"]) for w in g.sim.writes()]
    assert writes == [("create", "namedLocations/" + loc["id"]), ("update", "namedLocations/" + loc["id"]),
                      ("update", "namedLocations/" + loc["id"]), ("delete", "namedLocations/" + loc["id"])]


@pytest.mark.parametrize("ranges, fragment", [
    (["10.0.0.0/8"], "greater than /8"),
    (["0.0.0.0/0"], "greater than /8"),
    ([{"@odata.type": V4, "cidrAddress": "203.0.113.7"}], "CIDR notation"),
    ([{"cidrAddress": "203.0.113.0/24"}], "@odata.type"),
    ([{"@odata.type": V6, "cidrAddress": "203.0.113.0/24"}], "address family"),
    ([{"@odata.type": V4, "cidrAddress": "300.1.2.0/24"}], "not a valid CIDR"),
    ([], "non-empty"),
    (["198.51.100.%d/32" % (i % 256) for i in range(2001)], "at most 2000"),
])
def test_create_validation(g, ranges, fragment):
    ranges = [r if isinstance(r, dict) else _ranges(r)[0] for r in ranges]
    resp = g.call("POST", json={"@odata.type": IP, "displayName": "bad", "ipRanges": ranges})
    assert resp.status_code == 400
    code, message = _error(resp)
    assert fragment in message
    assert g.sim.writes() == []


def test_create_needs_odata_type_and_name(g):
    resp = g.call("POST", json={"displayName": "x", "ipRanges": _ranges("203.0.113.0/24")})
    assert resp.status_code == 400 and "@odata.type" in _error(resp)[1]
    resp = g.call("POST", json={"@odata.type": IP, "ipRanges": _ranges("203.0.113.0/24")})
    assert resp.status_code == 400 and "displayName" in _error(resp)[1]
    resp = g.call("POST", data=b"not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


def test_location_limit_and_paging(g):
    # 2 seeded + 193 = 195, the tenant limit.
    net = ipaddress.ip_network("100.64.0.0/16")
    subnets = list(net.subnets(new_prefix=24))
    for i in range(193):
        assert g.create("loc %03d" % i, [str(subnets[i])]).status_code == 201
    resp = g.create("one too many", ["203.0.113.0/24"])
    assert resp.status_code == 400 and "195" in _error(resp)[1]

    seen, url, pages = [], COLLECTION, 0
    while url:
        body = g.call("GET", url).json()
        seen += body["value"]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 2 and len(seen) == 195 and len({loc["id"] for loc in seen}) == 195
    assert len(g.call("GET", params={"$top": "999"}).json()["value"]) == 195
    assert g.call("GET", params={"$top": "0"}).status_code == 400
    # The filter is kept across pages.
    url, ip_count = COLLECTION + "?$filter=isof('microsoft.graph.ipNamedLocation')&$top=50", 0
    while url:
        body = g.call("GET", url).json()
        ip_count += len(body["value"])
        url = body.get("@odata.nextLink")
    assert ip_count == 194


def test_permissions(g):
    read_only = g.token(roles=["Policy.Read.All"])
    assert g.call("GET", token=read_only).status_code == 200
    resp = g.create("x", ["203.0.113.0/24"], token=read_only)
    assert resp.status_code == 403
    assert _error(resp) == ("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    nothing = g.token(roles=["Exchange.ManageAsApp"])
    assert g.call("GET", token=nothing).status_code == 403
    delegated = g.token(scp="Policy.Read.All Policy.ReadWrite.ConditionalAccess")
    assert g.create("delegated", ["203.0.113.0/24"], token=delegated).status_code == 201
    assert g.sim.counters.snapshot()["writes"]["graph"] == 1


def test_tokens_refused_in_graph_shape(g):
    resp = g.call("GET", token=False)
    assert resp.status_code == 401
    assert _error(resp) == ("InvalidAuthenticationToken", "Access token is empty.")
    resp = g.call("GET", token=g.token(aud="https://outlook.office365.com"))
    assert resp.status_code == 401 and _error(resp)[0] == "InvalidAuthenticationToken"
    # The listener's own origin is an accepted audience (the simulator's graph_uri/.default).
    assert g.call("GET", token=g.token(aud=g.base)).status_code == 200
    expired = g.token(lifetime=-10)
    resp = g.call("GET", token=expired)
    assert resp.status_code == 401 and "expired" in _error(resp)[1]


def test_unknown_id_and_bad_filter(g):
    resp = g.call("GET", COLLECTION + "/00000000-0000-4000-8000-000000000000")
    assert resp.status_code == 404
    resp = g.call("GET", params={"$filter": "startswith(displayName,'x')"})
    assert resp.status_code == 400


def test_control_routes(g):
    class Req:  # the control API forwards its requests; only method, path, query and json() are used
        def __init__(self, method, path, body=None, query=None):
            self.method, self.path, self._body, self.query = method, path, body, query or {}

        def json(self):
            return self._body

    added = g.service.control(Req("POST", "/graph/named-locations",
                                  [{"displayName": "dup", "ipRanges": ["192.0.2.0/24"]},
                                   {"displayName": "dup", "ipRanges": ["192.0.2.0/24"]}]))
    assert added.status == 201
    listing = json.loads(g.service.control(Req("GET", "/graph/named-locations")).body)
    assert [loc["displayName"] for loc in listing["value"]].count("dup") == 2
    dup_id = json.loads(added.body)["value"][0]["id"]
    assert g.service.control(Req("DELETE", "/graph/named-locations/" + dup_id)).status == 200
    assert g.service.control(Req("DELETE", "/graph/named-locations/" + dup_id)).status == 404
    assert g.sim.writes() == []
    g.service.control(Req("POST", "/graph/named-locations", [{"displayName": "bulk %d" % i, "ipRanges": ["192.0.2.0/24"]}
                                                             for i in range(5)]))
    assert g.service.control(Req("DELETE", "/graph/named-locations")).status == 400
    removed = g.service.control(Req("DELETE", "/graph/named-locations", query={"prefix": "bulk "}))
    assert json.loads(removed.body) == {"deleted": 5}
    g.service.control(Req("POST", "/graph/reset"))
    listing = json.loads(g.service.control(Req("GET", "/graph/named-locations")).body)
    assert len(listing["value"]) == 2


# --- the whole simulator (conftest's session instance) with real msal -----------------------------------


def _msal_token(endpoints, app):
    import msal  # real client, as the collection uses it

    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
    session.verify = endpoints["ca_path"]
    client = msal.ConfidentialClientApplication(endpoints["apps"][app]["app_id"],
                                                client_credential=endpoints["apps"][app]["client_secret"],
                                                authority=endpoints["authority"], http_client=session,
                                                instance_discovery=False)
    result = client.acquire_token_for_client(scopes=[endpoints["graph_uri"] + "/.default"])
    assert "access_token" in result, result.get("error_description")
    return result["access_token"]


def _control(endpoints, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(endpoints["control_uri"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # nosec - loopback control API
        return json.loads(resp.read() or b"null")


def test_msal_full_app_round_trip(simulator):
    token = _msal_token(simulator, "full")
    headers = {"Authorization": "Bearer " + token}
    url = simulator["graph_uri"] + COLLECTION
    ca = simulator["ca_path"]
    before = _control(simulator, "GET", "/counters").get("graph", {})
    resp = requests.post(url, headers=headers, verify=ca, timeout=10,
                         json={"@odata.type": IP, "displayName": "msal test", "isTrusted": True,
                               "ipRanges": _ranges("203.0.113.0/24")})
    assert resp.status_code == 201, resp.text
    loc_id = resp.json()["id"]
    listing = requests.get(url, headers=headers, verify=ca, timeout=10,
                           params={"$filter": "isof('microsoft.graph.ipNamedLocation')"}).json()
    assert "msal test" in [loc["displayName"] for loc in listing["value"]]
    assert requests.patch(url + "/" + loc_id, headers=headers, verify=ca, timeout=10,
                          json={"@odata.type": IP, "isTrusted": False}).status_code == 204
    assert requests.delete(url + "/" + loc_id, headers=headers, verify=ca, timeout=10).status_code == 204
    after = _control(simulator, "GET", "/counters")["graph"]
    assert after["POST"] - before.get("POST", 0) == 1
    assert after["DELETE"] - before.get("DELETE", 0) == 1
    ops = [(w["operation"], w["target"]) for w in _control(simulator, "GET", "/writes")["writes"]
           if w["service"] == "graph"]
    assert ops[-3:] == [("create", "namedLocations/" + loc_id), ("update", "namedLocations/" + loc_id),
                        ("delete", "namedLocations/" + loc_id)]
    state = _control(simulator, "GET", "/graph/named-locations")["value"]
    assert loc_id not in [loc["id"] for loc in state]


def test_msal_app_without_graph_permission(simulator):
    token = _msal_token(simulator, "no_graph_permission")
    resp = requests.get(simulator["graph_uri"] + COLLECTION, headers={"Authorization": "Bearer " + token},
                        verify=simulator["ca_path"], timeout=10)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "Authorization_RequestDenied"


def test_msal_exchange_token_refused(simulator):
    """A token for Exchange Online (connection_uri/.default) is not accepted by Graph."""
    import msal

    session = requests.Session()
    session.trust_env = False
    session.verify = simulator["ca_path"]
    app = simulator["apps"]["full"]
    client = msal.ConfidentialClientApplication(app["app_id"], client_credential=app["client_secret"],
                                                authority=simulator["authority"], http_client=session,
                                                instance_discovery=False)
    exo = client.acquire_token_for_client(scopes=[simulator["connection_uri"] + "/.default"])["access_token"]
    resp = requests.get(simulator["graph_uri"] + COLLECTION, headers={"Authorization": "Bearer " + exo},
                        verify=simulator["ca_path"], timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "InvalidAuthenticationToken"
