# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_auth.py: flow inference, certificates, claims, error mapping, the token cache and its lock."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _auth
from ansible_collections.m365ops.exchange_online.plugins.module_utils._environments import resolve_endpoints
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoAuthError, ExoConfigError

APP = "00000000-1111-2222-3333-444444444444"
RESOURCE = "https://outlook.office365.com"


def jwt(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return "%s.%s.c2ln" % (part({"alg": "RS256", "typ": "JWT"}), part(claims))


def params(**kwargs):
    base = {"organization": "contoso.onmicrosoft.com", "token_cache_path": ""}
    base.update(kwargs)
    return base


class FakeHttp:
    def __init__(self):
        self.secrets = []

    def add_secret(self, value):
        self.secrets.append(value)

    def msal_http_client(self):
        return None


def provider(**kwargs):
    p = params(**kwargs)
    return _auth.TokenProvider(p, resolve_endpoints(p), FakeHttp(), warn=lambda m: None)


# -- flow inference -------------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ({"client_secret": "s"}, "client_secret"),
    ({"certificate_path": "/x.pem"}, "certificate"),
    ({"certificate": "-----BEGIN"}, "certificate"),
    ({"user_principal_name": "a@b", "password": "p"}, "password"),
    ({"user_principal_name": "a@b"}, "device_code"),
    ({"managed_identity_client_id": "id"}, "managed_identity"),
    ({"access_token": "t"}, "access_token"),
    ({"auth_method": "managed_identity", "client_secret": "s"}, "managed_identity"),
])
def test_auto_inference(given, expected):
    assert _auth.select_auth_method(given) == expected


def test_auto_refuses_ambiguity_and_names_the_options():
    with pytest.raises(ExoConfigError) as caught:
        _auth.select_auth_method({"client_secret": "s", "certificate_path": "/x.pem", "user_principal_name": "a", "password": "p"})
    message = caught.value.message
    assert "auth_method=auto cannot choose" in message
    assert "client_secret" in message and "certificate_path" in message and "password" in message
    assert "s" not in caught.value.details.get("candidates", [])


def test_auto_without_credentials():
    with pytest.raises(ExoConfigError) as caught:
        _auth.select_auth_method({})
    assert "No credentials given" in caught.value.message


@pytest.mark.parametrize("method, given, missing", [
    ("client_secret", {"client_secret": "s"}, "app_id"),
    ("client_secret", {"app_id": APP, "client_secret": "s", "organization": None}, "organization"),
    ("certificate", {"app_id": APP}, "certificate_path"),
    ("password", {"user_principal_name": "a@b"}, "password"),
    ("managed_identity", {"organization": None}, "organization"),
    ("access_token", {}, "access_token"),
])
def test_validation_names_the_missing_option(method, given, missing):
    p = params(**given)
    with pytest.raises(ExoConfigError) as caught:
        _auth.validate_auth_params(p, method)
    assert missing in caught.value.message


def test_token_cache_path_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _auth.resolve_token_cache_path({"token_cache_path": ""}) is None
    assert _auth.resolve_token_cache_path({}) == str(tmp_path / ".ansible/m365ops_exchange_online/token_cache.json")
    assert _auth.resolve_token_cache_path({"token_cache_path": "~/c.json"}) == str(tmp_path / "c.json")


# -- claims and the caller's token ------------------------------------------------------------------

def test_decode_claims_and_identity():
    claims = _auth.decode_claims(jwt({"upn": "admin@contoso.onmicrosoft.com", "tid": "t", "scp": "Exchange.Manage", "appid": APP}))
    identity = _auth.token_identity(claims)
    assert identity["upn"] == "admin@contoso.onmicrosoft.com" and not identity["app_only"]
    app = _auth.token_identity({"appid": APP, "roles": ["Exchange.ManageAsApp"], "tid": "t", "idtyp": "app"})
    assert app["app_only"] and app["roles"] == ["Exchange.ManageAsApp"]


@pytest.mark.parametrize("token", ["not-a-jwt", "a.!!!.c", "a.%s.c" % base64.urlsafe_b64encode(b"[1]").decode()])
def test_decode_claims_rejects_garbage(token):
    with pytest.raises(ExoAuthError):
        _auth.decode_claims(token)


def test_access_token_expiry_is_read_and_bearer_prefix_dropped():
    exp = int(time.time()) + 3600
    token = jwt({"exp": exp, "iat": exp - 3600, "appid": APP, "tid": "t", "roles": ["Exchange.ManageAsApp"]})
    p = provider(access_token="Bearer " + token)
    result = p.get_token(RESOURCE)
    assert result.token == token and result.expires_on == exp
    assert p.http.secrets == [token]


def test_expired_access_token_is_refused():
    exp = int(time.time()) - 60
    p = provider(access_token=jwt({"exp": exp, "appid": APP}))
    with pytest.raises(ExoAuthError) as caught:
        p.get_token(RESOURCE)
    assert "access_token expired at" in caught.value.message
    assert caught.value.code == "access_token_expired"


def test_rejected_access_token_cannot_be_refreshed():
    p = provider(access_token=jwt({"exp": int(time.time()) + 3600, "appid": APP}))
    p.get_token(RESOURCE)
    p.invalidate(RESOURCE)
    with pytest.raises(ExoAuthError) as caught:
        p.get_token(RESOURCE)
    assert "refused the given access_token" in caught.value.message


def test_upn_mismatch_is_refused():
    token = jwt({"exp": int(time.time()) + 3600, "upn": "other@contoso.onmicrosoft.com", "scp": "Exchange.Manage"})
    p = provider(access_token=token, user_principal_name="admin@contoso.onmicrosoft.com")
    with pytest.raises(ExoAuthError) as caught:
        p.get_token(RESOURCE)
    assert "Signed in as other@contoso.onmicrosoft.com, but user_principal_name is admin@contoso.onmicrosoft.com" in caught.value.message
    same_case = provider(access_token=token, user_principal_name="OTHER@contoso.onmicrosoft.com")
    assert same_case.get_token(RESOURCE).claims["upn"] == "other@contoso.onmicrosoft.com"


# -- certificates ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exo-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert


def _pem(key, cert, password=None):
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
            + cert.public_bytes(serialization.Encoding.PEM))


def test_pem_file(tmp_path, keypair):
    key, cert = keypair
    path = tmp_path / "app.pem"
    path.write_bytes(_pem(key, cert))
    loaded = _auth.load_certificate({"certificate_path": str(path)})
    assert loaded.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert "BEGIN PRIVATE KEY" in loaded.private_key_pem and "BEGIN CERTIFICATE" in loaded.certificate_pem


def test_pem_content(keypair):
    key, cert = keypair
    loaded = _auth.load_certificate({"certificate": _pem(key, cert).decode()})
    assert loaded.thumbprint_sha256 == cert.fingerprint(hashes.SHA256()).hex().upper()


def test_encrypted_pem(tmp_path, keypair):
    key, cert = keypair
    path = tmp_path / "enc.pem"
    path.write_bytes(_pem(key, cert, b"s3cret!"))
    assert _auth.load_certificate({"certificate_path": str(path), "certificate_password": "s3cret!"}).thumbprint
    with pytest.raises(ExoConfigError) as caught:
        _auth.load_certificate({"certificate_path": str(path)})
    assert "give certificate_password" in caught.value.message
    with pytest.raises(ExoConfigError) as caught:
        _auth.load_certificate({"certificate_path": str(path), "certificate_password": "wrong"})
    assert "certificate_password is wrong" in caught.value.message
    assert "wrong" not in caught.value.message.replace("is wrong", "")


def test_pfx(tmp_path, keypair):
    key, cert = keypair
    path = tmp_path / "app.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"app", key, cert, None,
                                                           serialization.BestAvailableEncryption(b"pfxpass")))
    loaded = _auth.load_certificate({"certificate_path": str(path), "certificate_password": "pfxpass"})
    assert loaded.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    with pytest.raises(ExoConfigError) as caught:
        _auth.load_certificate({"certificate_path": str(path), "certificate_password": "nope"})
    assert "PFX/PKCS#12" in caught.value.message


def test_missing_file_and_pem_without_key(tmp_path, keypair):
    _key, cert = keypair
    with pytest.raises(ExoConfigError) as caught:
        _auth.load_certificate({"certificate_path": str(tmp_path / "none.pem")})
    assert "Cannot read certificate_path" in caught.value.message
    path = tmp_path / "cert-only.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ExoConfigError) as caught:
        _auth.load_certificate({"certificate_path": str(path)})
    assert "no private key" in caught.value.message


# -- Entra errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, extra, code, fragment", [
    ("password", {"user_principal_name": "a@contoso.onmicrosoft.com", "password": "pw"}, 50126, "user name or password is wrong"),
    ("password", {"user_principal_name": "a@contoso.onmicrosoft.com", "password": "pw"}, 50076, "use auth_method=device_code or an app"),
    ("password", {"user_principal_name": "a@contoso.onmicrosoft.com", "password": "pw"}, 50079, "multi-factor"),
    ("client_secret", {"app_id": APP, "client_secret": "s"}, 7000222, "has expired (AADSTS7000222)"),
    ("client_secret", {"app_id": APP, "client_secret": "s"}, 7000215, "Invalid client secret"),
    ("client_secret", {"app_id": APP, "client_secret": "s"}, 700016, "was not found in tenant contoso.onmicrosoft.com"),
    ("client_secret", {"app_id": APP, "client_secret": "s"}, 90002, "Tenant contoso.onmicrosoft.com was not found"),
    ("certificate", {"app_id": APP, "certificate": "x"}, 700027, "does not know the certificate"),
    ("client_secret", {"app_id": APP, "client_secret": "s"}, 12345, "Sign-in to Entra ID failed for app"),
])
def test_entra_errors_are_actionable(method, extra, code, fragment):
    p = provider(auth_method=method, **extra)
    result = {"error": "invalid_grant", "error_codes": [code],
              "error_description": "AADSTS%d: something. Trace ID: x" % code}
    with pytest.raises(ExoAuthError) as caught:
        p._raise_entra(result)
    assert fragment in caught.value.message
    assert caught.value.code == "AADSTS%d" % code


def test_oidc_discovery_failure_is_unknown_tenant():
    p = provider(app_id=APP, client_secret="s", organization="nosuch.onmicrosoft.com")
    error = p._translate_exception(ValueError("OIDC Discovery failed on https://login/nosuch. HTTP status: 400, Error: AADSTS90002"))
    assert "Tenant nosuch.onmicrosoft.com was not found" in error.message


def test_unreachable_federation_server():
    p = provider(user_principal_name="u@fed.example", password="pw")
    exc = requests.exceptions.ConnectionError("HTTPSConnectionPool(host='adfs.fed.example', port=443): [Errno 111] Connection refused")
    exc.request = requests.Request("GET", "https://adfs.fed.example/adfs/services/trust/mex").prepare()
    error = p._translate_exception(exc)
    assert "federated identity provider of u@fed.example is unreachable" in error.message
    assert error.code == "federation_unreachable"


def test_unreachable_entra_is_not_called_federation():
    p = provider(user_principal_name="u@fed.example", password="pw")
    exc = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    exc.request = requests.Request("POST", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token").prepare()
    assert p._translate_exception(exc).code == "connection_error"


# -- token lifetime, refresh and the cache ---------------------------------------------------------

class FakeConfidentialApp:
    def __init__(self, lifetime=3600):
        self.requests = 0
        self.lifetime = lifetime

    def acquire_token_silent(self, scopes, account=None):
        return None

    def acquire_token_for_client(self, scopes):
        self.requests += 1
        now = int(time.time())
        return {"access_token": jwt({"exp": now + self.lifetime, "iat": now, "appid": APP, "n": self.requests}),
                "expires_in": self.lifetime}


def test_token_reused_until_the_margin_then_refreshed():
    p = provider(app_id=APP, client_secret="s")
    p._app = FakeConfidentialApp()
    first = p.get_token(RESOURCE)
    assert p.get_token(RESOURCE) is first and p._app.requests == 1
    # less than 5 minutes left: renewed
    now = int(time.time())
    p._tokens[RESOURCE] = first._replace(expires_on=now + 200, claims=dict(first.claims, iat=now - 3400))
    p.get_token(RESOURCE)
    assert p._app.requests == 2


def test_short_lived_tokens_use_half_their_lifetime_as_margin():
    p = provider(app_id=APP, client_secret="s")
    p._app = FakeConfidentialApp(lifetime=10)
    p.get_token(RESOURCE)
    p.get_token(RESOURCE)
    assert p._app.requests == 1


def test_invalidate_forces_a_new_token_and_drops_the_cached_one(monkeypatch):
    p = provider(app_id=APP, client_secret="s")
    p._app = FakeConfidentialApp()
    dropped = []
    monkeypatch.setattr(p, "_drop_cached_app_tokens", lambda app, scopes, resource=None: dropped.append(scopes))
    p.get_token(RESOURCE)
    p.invalidate(RESOURCE)
    p.get_token(RESOURCE)
    assert p._app.requests == 2
    assert dropped == [[RESOURCE + "/.default"]]


def test_bearer_auth():
    p = provider(access_token=jwt({"exp": int(time.time()) + 3600}))
    auth = _auth.BearerAuth(p, RESOURCE)
    assert auth.header().startswith("Bearer eyJ")


def test_device_code_without_cache_says_to_run_exo_connect():
    p = provider(user_principal_name="admin@contoso.onmicrosoft.com", auth_method="device_code")

    class NoAccounts:
        def get_accounts(self, username=None):
            return []

    p._app = NoAccounts()
    with pytest.raises(ExoAuthError) as caught:
        p.get_token(RESOURCE)
    assert "run m365ops.exchange_online.exo_connect first" in caught.value.message.lower()


def test_cache_file_modes(tmp_path):
    path = tmp_path / "sub" / "token_cache.json"
    cache_file = _auth.TokenCacheFile(str(path))
    with cache_file.locked() as cache:
        cache.add({"client_id": APP, "scope": [RESOURCE + "/.default"],
                   "token_endpoint": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
                   "response": {"access_token": "at", "expires_in": 3600, "token_type": "Bearer"}})
    assert stat.S_IMODE(os.stat(str(path.parent)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    reopened = _auth.TokenCacheFile(str(path))
    with reopened.locked() as cache:
        assert cache.search(cache.CredentialType.ACCESS_TOKEN)


def test_cache_lock_serialises_acquisitions(tmp_path):
    path = str(tmp_path / "token_cache.json")
    events = []

    def worker(n):
        with _auth.TokenCacheFile(path).locked():
            events.append(("in", n))
            time.sleep(0.05)
            events.append(("out", n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # every "in" is followed by the same worker's "out": no two holders at once
    for index in range(0, len(events), 2):
        assert events[index][0] == "in" and events[index + 1] == ("out", events[index][1])


def test_cache_directory_created_by_another_fork_is_fine(tmp_path, monkeypatch):
    path = tmp_path / "race" / "token_cache.json"
    real_makedirs = os.makedirs

    def racing_makedirs(name, mode=0o777, exist_ok=False):
        real_makedirs(name, mode, exist_ok=True)  # the other fork wins
        if not exist_ok:
            raise FileExistsError(17, "File exists", name)

    monkeypatch.setattr(_auth.os, "makedirs", racing_makedirs)
    _auth.TokenCacheFile(str(path))
    assert path.parent.is_dir()


class StaleRefreshApp:
    """A cache whose refresh token the service no longer accepts, then a device code flow."""

    def __init__(self):
        self.flows = 0

    def get_accounts(self, username=None):
        return [{"username": "mfa.admin@contoso.onmicrosoft.com"}]

    def acquire_token_silent_with_error(self, scopes, account=None, force_refresh=False):
        return {"error": "invalid_grant", "error_description": "AADSTS700082: The refresh token has expired."}

    def initiate_device_flow(self, scopes):
        return {"user_code": "ABCD", "message": "To sign in, enter the code ABCD"}

    def acquire_token_by_device_flow(self, flow):
        self.flows += 1
        exp = int(time.time()) + 3600
        return {"access_token": jwt({"exp": exp, "upn": "mfa.admin@contoso.onmicrosoft.com", "scp": "Exchange.Manage"})}


def test_device_code_sign_in_starts_over_when_the_refresh_token_is_stale():
    p = provider(user_principal_name="mfa.admin@contoso.onmicrosoft.com", auth_method="device_code")
    p._app = StaleRefreshApp()
    shown = []
    token, prompted = p.device_code_sign_in(RESOURCE, shown.append)
    assert prompted and shown == ["To sign in, enter the code ABCD"] and p._app.flows == 1
    assert token.claims["upn"] == "mfa.admin@contoso.onmicrosoft.com"
    # a module (not the controller) with the same stale cache says what to do
    with pytest.raises(ExoAuthError) as caught:
        p.get_token("https://other.example")
    assert "can no longer be refreshed" in caught.value.message
