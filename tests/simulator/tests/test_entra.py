# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real msal against the simulated Entra ID: every grant, the errors clients must handle, token claims."""

from __future__ import annotations

import threading
import time

import jwt
import msal
import pytest
import requests

# msal warns that ROPC is deprecated; the collection still supports it (Connect-ExchangeOnline -Credential)
pytestmark = pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning")


def _decode(simulator, token):
    """Verify a token with the simulator's published keys, as a resource server would."""
    session = simulator.session()
    config = session.get(simulator["authority"] + "/v2.0/.well-known/openid-configuration").json()
    jwks = session.get(config["jwks_uri"]).json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    return jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False})


def _confidential(simulator, credential, app="full", authority=None, **kwargs):
    return msal.ConfidentialClientApplication(simulator["apps"][app]["app_id"], client_credential=credential,
                                              authority=authority or simulator["authority"],
                                              http_client=simulator.session(), validate_authority=False, **kwargs)


def _public(simulator, authority=None):
    return msal.PublicClientApplication(simulator["public_client_id"], authority=authority or simulator["authority"],
                                        http_client=simulator.session(), validate_authority=False)


def _exchange_scope(simulator):
    return [simulator["connection_uri"] + "/.default"]


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_client_secret(clean):
    sim = clean
    result = _confidential(sim, sim["apps"]["full"]["client_secret"]).acquire_token_for_client(_exchange_scope(sim))
    assert "access_token" in result, result.get("error_description")
    claims = _decode(sim, result["access_token"])
    assert claims["aud"] == sim["connection_uri"]
    assert claims["iss"] == "https://sts.windows.net/%s/" % sim["tenant_id"]
    assert claims["tid"] == sim["tenant_id"]
    assert claims["appid"] == sim["apps"]["full"]["app_id"]
    assert claims["idtyp"] == "app"
    assert claims["roles"] == ["Exchange.ManageAsApp"]
    assert "29232cdf-9323-42fd-ade2-1d097af3e4de" in claims["wids"]
    assert claims["exp"] - claims["iat"] == sim["token_lifetime"]
    assert sim.control_get("/counters")["token_requests"] == {"client_credentials": 1}


def test_graph_token_carries_graph_roles(clean):
    sim = clean
    app = _confidential(sim, sim["apps"]["full"]["client_secret"])
    result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    claims = _decode(sim, result["access_token"])
    assert claims["aud"] == "https://graph.microsoft.com"
    assert sorted(claims["roles"]) == ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]


def test_certificate_pem_with_public_cert_signs_ps256(clean):
    sim = clean
    full = sim["apps"]["full"]
    seen = []

    class Spy(type(sim.session())):
        def request(self, method, url, *args, **kwargs):
            data = kwargs.get("data") or {}
            if isinstance(data, dict) and data.get("client_assertion"):
                seen.append(jwt.get_unverified_header(data["client_assertion"]))
            return super().request(method, url, *args, **kwargs)

    pem = _read(full["certificate_path"])
    app = msal.ConfidentialClientApplication(full["app_id"], authority=sim["authority"], validate_authority=False,
                                             client_credential={"private_key": pem, "public_certificate": pem},
                                             http_client=Spy(sim["ca_path"]))
    result = app.acquire_token_for_client(_exchange_scope(sim))
    assert "access_token" in result, result.get("error_description")
    assert seen and seen[0]["alg"] == "PS256" and "x5t#S256" in seen[0]


def test_certificate_thumbprint_only_signs_rs256(clean):
    sim = clean
    full = sim["apps"]["full"]
    result = _confidential(sim, {"private_key": _read(full["certificate_path"]), "thumbprint": full["thumbprint"]}
                           ).acquire_token_for_client(_exchange_scope(sim))
    assert "access_token" in result, result.get("error_description")
    assert _decode(sim, result["access_token"])["appidacr"] == "2"


def test_certificate_pfx_and_encrypted_pem(clean):
    sim = clean
    full = sim["apps"]["full"]
    pfx = _confidential(sim, {"private_key_pfx_path": full["certificate_pfx_path"],
                              "passphrase": full["certificate_pfx_password"]})
    assert "access_token" in pfx.acquire_token_for_client(_exchange_scope(sim))
    encrypted = _read(full["certificate_encrypted_path"])
    enc = _confidential(sim, {"private_key": encrypted, "public_certificate": encrypted,
                              "passphrase": full["certificate_encrypted_password"]})
    assert "access_token" in enc.acquire_token_for_client(_exchange_scope(sim))


def test_unregistered_certificate_is_aadsts700027(clean):
    sim = clean
    app = sim["apps"]["unregistered_certificate"]
    pem = _read(app["certificate_path"])
    result = _confidential(sim, {"private_key": pem, "public_certificate": pem},
                           app="unregistered_certificate").acquire_token_for_client(_exchange_scope(sim))
    assert result["error"] == "invalid_client" and result["error_codes"] == [700027]


def test_certificate_of_another_app_is_refused(clean):
    sim = clean
    other = sim["apps"]["no_manage_as_app"]
    pem = _read(other["certificate_path"])
    result = _confidential(sim, {"private_key": pem, "public_certificate": pem}).acquire_token_for_client(_exchange_scope(sim))
    assert result["error_codes"] == [700027]


@pytest.mark.parametrize("app, secret, code", [
    ("expired_secret", None, 7000222),
    ("full", "not-the-secret", 7000215),
])
def test_secret_errors(clean, app, secret, code):
    sim = clean
    result = _confidential(sim, secret or sim["apps"][app]["client_secret"], app=app).acquire_token_for_client(
        _exchange_scope(sim))
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith("AADSTS%d:" % code)
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert result[key]
    assert sim.control_get("/counters")["token_errors"] == {"AADSTS%d" % code: 1}


def test_unknown_client_is_aadsts700016(simulator):
    session = simulator.session()
    url = simulator["authority"] + "/oauth2/v2.0/token"
    resp = session.post(url, data={"grant_type": "client_credentials", "client_id": "00000000-0000-0000-0000-000000000001",
                                   "client_secret": "x", "scope": "https://outlook.office365.com/.default"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "unauthorized_client" and body["error_codes"] == [700016]
    assert set(body) >= {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"}


def test_unknown_tenant_on_discovery_and_token(simulator):
    base = simulator["authority"].rsplit("/", 1)[0]
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        _confidential(simulator, "x", authority=base + "/nowhere.onmicrosoft.com")
    discovery = simulator.session().get(base + "/nowhere.onmicrosoft.com/v2.0/.well-known/openid-configuration")
    assert discovery.status_code == 400 and discovery.json()["error_codes"] == [90002]
    resp = simulator.session().post(base + "/nowhere.onmicrosoft.com/oauth2/v2.0/token",
                                    data={"grant_type": "client_credentials", "client_id": simulator["apps"]["full"]["app_id"],
                                          "client_secret": "x", "scope": "https://outlook.office365.com/.default"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_tenant" and resp.json()["error_codes"] == [90002]


def test_instance_discovery_and_domain_authority(simulator):
    base = simulator["authority"].rsplit("/", 1)[0]
    app = msal.ConfidentialClientApplication(
        simulator["apps"]["full"]["app_id"], client_credential=simulator["apps"]["full"]["client_secret"],
        authority=base + "/" + simulator["organization"], http_client=simulator.session(),
        instance_discovery=base + "/common/discovery/instance")
    result = app.acquire_token_for_client(_exchange_scope(simulator))
    assert "access_token" in result, result.get("error_description")
    assert _decode(simulator, result["access_token"])["tid"] == simulator["tenant_id"]


def test_password_grant_and_refresh_token(clean):
    sim = clean
    user = sim["users"]["admin"]
    app = _public(sim)
    result = app.acquire_token_by_username_password(user["user_principal_name"], user["password"], _exchange_scope(sim))
    assert "access_token" in result, result.get("error_description")
    claims = _decode(sim, result["access_token"])
    assert claims["upn"] == user["user_principal_name"] and claims["idtyp"] == "user"
    assert claims["scp"] == "Exchange.Manage" and claims["appid"] == sim["public_client_id"]
    accounts = app.get_accounts(username=user["user_principal_name"])
    assert len(accounts) == 1
    refreshed = app.acquire_token_silent(_exchange_scope(sim), account=accounts[0], force_refresh=True)
    assert refreshed and "access_token" in refreshed
    assert refreshed["access_token"] != result["access_token"]
    counters = sim.control_get("/counters")
    assert counters["token_requests"] == {"password": 1, "refresh_token": 1}
    assert counters["entra"]["userrealm"] == 1


def test_password_errors(clean):
    sim = clean
    app = _public(sim)
    admin = sim["users"]["admin"]
    bad = app.acquire_token_by_username_password(admin["user_principal_name"], "wrong", _exchange_scope(sim))
    assert bad["error"] == "invalid_grant" and bad["error_codes"] == [50126]
    mfa = sim["users"]["mfa_admin"]
    assert mfa["mfa_required"] is True
    result = app.acquire_token_by_username_password(mfa["user_principal_name"], mfa["password"], _exchange_scope(sim))
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50076]
    assert "multi-factor authentication" in result["error_description"]
    assert result["suberror"] == "basic_action"


def test_federated_user_idp_unreachable(simulator):
    user = simulator["users"]["federated"]
    realm = simulator.session().get("%s/common/userrealm/%s?api-version=1.0" % (
        simulator["authority"].rsplit("/", 1)[0], user["user_principal_name"])).json()
    assert realm["account_type"] == "Federated" and realm["federation_protocol"] == "WSTrust"
    with pytest.raises(requests.exceptions.ConnectionError):
        _public(simulator).acquire_token_by_username_password(user["user_principal_name"], user["password"], _exchange_scope(simulator))


def test_device_code_approved_through_control_api(clean):
    sim = clean
    app = _public(sim)
    flow = app.initiate_device_flow(_exchange_scope(sim))
    assert flow["interval"] == 1 and flow["user_code"] in flow["message"]
    approved = sim.control_post("/device-codes/approve", {"user": "admin"})
    assert approved["approved"] == 1
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result.get("error_description")
    claims = _decode(sim, result["access_token"])
    assert claims["upn"] == sim["users"]["admin"]["user_principal_name"]
    assert "mfa" in claims["amr"]
    assert app.get_accounts()


def test_device_code_auto_approval_after_polls(clean):
    sim = clean
    assert sim["device_code_polls"] == 3
    app = _public(sim)
    flow = app.initiate_device_flow(_exchange_scope(sim))
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result.get("error_description")
    assert _decode(sim, result["access_token"])["upn"] == sim["users"]["mfa_admin"]["user_principal_name"]
    counters = sim.control_get("/counters")
    assert counters["token_requests"]["device_code"] == 4  # three pending polls, then the token
    assert counters["token_errors"]["AADSTS70016"] == 3


def test_device_code_expired(start_simulator):
    sim = start_simulator("--device-code-polls", "0", "--workstations", "0", "--mailboxes", "10")
    app = _public(sim)
    flow = app.initiate_device_flow(_exchange_scope(sim))
    results = []
    worker = threading.Thread(target=lambda: results.append(app.acquire_token_by_device_flow(flow)))
    worker.start()
    time.sleep(1.5)  # at least one authorization_pending poll
    assert sim.control_post("/device-codes/expire")["expired"] == 1
    worker.join(30)
    assert results and results[0]["error"] == "expired_token"
    assert sim.control_get("/counters")["token_errors"]["AADSTS70016"] >= 1


def test_managed_identity(clean, monkeypatch):
    sim = clean
    mi = sim["managed_identity"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", mi["endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", mi["header"])
    client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
    result = client.acquire_token_for_client(resource=sim["connection_uri"])
    assert "access_token" in result, result
    assert _decode(sim, result["access_token"])["roles"] == ["Exchange.ManageAsApp"]
    user_assigned = msal.ManagedIdentityClient(msal.UserAssignedManagedIdentity(client_id=mi["user_assigned_client_id"]),
                                               http_client=requests.Session())
    result = user_assigned.acquire_token_for_client(resource="https://outlook.office365.com")
    assert _decode(sim, result["access_token"])["appid"] == mi["user_assigned_client_id"]
    assert sim.control_get("/counters")["token_requests"] == {"managed_identity": 2}
    wrong = requests.get(mi["endpoint"], params={"resource": sim["connection_uri"], "api-version": "2019-08-01"},
                         headers={"X-IDENTITY-HEADER": "wrong"}, timeout=10)
    assert wrong.status_code == 401


def test_customer_tenant(clean):
    sim = clean
    base = sim["authority"].rsplit("/", 1)[0]
    customer = base + "/" + sim["customer_organization"]
    full = _confidential(sim, sim["apps"]["full"]["client_secret"], authority=customer)
    result = full.acquire_token_for_client(_exchange_scope(sim))
    assert _decode(sim, result["access_token"])["tid"] == sim["customer_tenant_id"]
    other = _confidential(sim, sim["apps"]["no_manage_as_app"]["client_secret"], app="no_manage_as_app", authority=customer)
    assert other.acquire_token_for_client(_exchange_scope(sim))["error_codes"] == [700016]
    admin = sim["users"]["admin"]
    delegated = _public(sim, authority=customer).acquire_token_by_username_password(
        admin["user_principal_name"], admin["password"], _exchange_scope(sim))
    assert _decode(sim, delegated["access_token"])["tid"] == sim["customer_tenant_id"]
    helpdesk = sim["users"]["no_exchange_role"]
    refused = _public(sim, authority=customer).acquire_token_by_username_password(
        helpdesk["user_principal_name"], helpdesk["password"], _exchange_scope(sim))
    assert refused["error_codes"] == [50020]


def test_scope_errors(simulator):
    url = simulator["authority"] + "/oauth2/v2.0/token"
    full = simulator["apps"]["full"]
    session = simulator.session()
    base = {"grant_type": "client_credentials", "client_id": full["app_id"], "client_secret": full["client_secret"]}
    unknown = session.post(url, data=dict(base, scope="https://example.invalid/.default")).json()
    assert unknown["error"] == "invalid_resource" and unknown["error_codes"] == [500011]
    not_default = session.post(url, data=dict(base, scope="https://outlook.office365.com/Exchange.Manage")).json()
    assert not_default["error_codes"] == [1002012]
    two = session.post(url, data=dict(base, scope="https://outlook.office365.com/.default https://graph.microsoft.com/.default")).json()
    assert two["error"] == "invalid_scope"


def test_tokens_issue_route(simulator):
    issued = simulator.control_post("/tokens/issue", {"app": "no_manage_as_app", "resource": simulator["connection_uri"]})
    claims = _decode(simulator, issued["access_token"])
    assert claims["appid"] == simulator["apps"]["no_manage_as_app"]["app_id"]
    assert "roles" not in claims
    user = simulator.control_post("/tokens/issue", {"user": "admin", "resource": simulator["graph_uri"]})
    assert _decode(simulator, user["access_token"])["scp"].startswith("Policy.")
    simulator.control_post("/tokens/issue", {"app": "nope"}, expect=400)


@pytest.mark.parametrize("resource_key, real, roles", [
    ("connection_uri", "https://outlook.office365.com", ["Exchange.ManageAsApp"]),
    ("security_compliance_uri", "https://ps.compliance.protection.outlook.com", ["Exchange.ManageAsApp"]),
    ("graph_uri", "https://graph.microsoft.com", ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"]),
])
def test_resources_by_origin_and_real_name(simulator, resource_key, real, roles):
    app = _confidential(simulator, simulator["apps"]["full"]["client_secret"])
    for resource in (simulator[resource_key], real):
        result = app.acquire_token_for_client([resource + "/.default"])
        assert "access_token" in result, result.get("error_description")
        claims = _decode(simulator, result["access_token"])
        assert claims["aud"] == resource
        assert sorted(claims["roles"]) == roles
