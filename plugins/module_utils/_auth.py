# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Every Entra ID sign-in flow the collection supports, on msal, with a token cache shared by forks.

Flows (reference exchange-online-rest.md §12): client credentials with a secret or a certificate
(private_key_jwt, PS256 + x5c when msal has the public certificate), username/password (ROPC),
device code, managed identity, and a caller's access token. Tokens persist in one file guarded by
an exclusive lock held around "read cache -> acquire -> write", so forks that start together make
one token request between them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import contextlib
import datetime
import json
import os
import re
import time
from collections import namedtuple

try:
    import msal
    from msal_extensions import FilePersistence, PersistedTokenCache
    HAS_MSAL = True
    MSAL_IMPORT_ERROR = None
except ImportError as exc:  # the import sanity test runs without msal
    msal = None
    HAS_MSAL = False
    MSAL_IMPORT_ERROR = exc

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not POSIX
    HAS_FCNTL = False

try:
    import requests
except ImportError:
    requests = None

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoAuthError, ExoConfigError
from ansible_collections.m365ops.exchange_online.plugins.module_utils._http import redact

AUTH_METHODS = ("auto", "client_secret", "certificate", "password", "device_code", "managed_identity", "access_token")
APP_ONLY_METHODS = ("client_secret", "certificate", "managed_identity")

# "Microsoft Exchange REST API Based PowerShell": the public client id of the EXO V3 module,
# used for delegated flows when app_id is not given (reference §12).
EXO_PUBLIC_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
DEFAULT_TOKEN_CACHE_PATH = "~/.ansible/m365ops_exchange_online/token_cache.json"

# A token is renewed when less than this is left (msal applies the same 5 minutes to its cache).
REFRESH_MARGIN = 300

# Hosts msal knows; any other authority (a test double, a private endpoint) skips instance discovery.
KNOWN_AUTHORITY_HOSTS = (
    "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
    "login.microsoftonline.us", "login.chinacloudapi.cn", "login.microsoftonline.de",
)

AccessToken = namedtuple("AccessToken", ["token", "expires_on", "claims"])

SIGN_IN_FIRST = (
    "No cached sign-in for auth_method=device_code{who}. Run m365ops.exchange_online.exo_connect first to sign "
    "in (it shows the URL and code while it waits), with the same app_id, organization, token_cache_path and "
    "exchange_environment_name; later tasks then use the cached refresh token."
)


# ---------------------------------------------------------------------------------------------
# Options -> flow
# ---------------------------------------------------------------------------------------------

def _given(params, *names):
    return [name for name in names if params.get(name)]


def select_auth_method(params):
    """The flow to use: auth_method when set, else inferred from the credentials given (refusing ambiguity)."""
    method = params.get("auth_method") or "auto"
    if method != "auto":
        return method
    candidates = []
    if params.get("access_token"):
        candidates.append(("access_token", "access_token"))
    if params.get("client_secret"):
        candidates.append(("client_secret", "client_secret"))
    certs = _given(params, "certificate_path", "certificate")
    if certs:
        candidates.append(("certificate", "/".join(certs)))
    if params.get("password"):
        candidates.append(("password", "password"))
    if params.get("managed_identity_client_id"):
        candidates.append(("managed_identity", "managed_identity_client_id"))
    if len(candidates) > 1:
        raise ExoConfigError(
            "auth_method=auto cannot choose a sign-in method: credentials for %s were given (%s). Set auth_method "
            "to the one to use, or remove the others (check module_defaults and EXO_* environment variables)." % (
                ", ".join(c[0] for c in candidates), ", ".join(c[1] for c in candidates)),
            details={"option": "auth_method", "candidates": [c[0] for c in candidates]},
        )
    if candidates:
        return candidates[0][0]
    if params.get("user_principal_name"):
        # Like Connect-ExchangeOnline -UserPrincipalName without a credential: an interactive
        # (here: device code) sign-in, silent once a refresh token is cached.
        return "device_code"
    raise ExoConfigError(
        "No credentials given. Set auth_method and its options: client_secret or certificate_path/certificate "
        "(with app_id and organization) for an app, user_principal_name and password, user_principal_name alone "
        "for a device code sign-in, auth_method=managed_identity, or access_token.",
        details={"option": "auth_method"},
    )


def validate_auth_params(params, method):
    """Options each flow needs, checked before any request so the message names what is missing."""
    def need(*names):
        missing = [n for n in names if not params.get(n)]
        if missing:
            raise ExoConfigError(
                "auth_method=%s needs %s." % (method, " and ".join(missing)),
                details={"option": missing[0], "auth_method": method},
            )
    if method == "client_secret":
        need("app_id", "client_secret", "organization")
    elif method == "certificate":
        need("app_id", "organization")
        if not (params.get("certificate_path") or params.get("certificate")):
            raise ExoConfigError(
                "auth_method=certificate needs certificate_path (PEM or PFX file) or certificate (PEM content).",
                details={"option": "certificate_path", "auth_method": method},
            )
    elif method == "password":
        need("user_principal_name", "password")
    elif method == "managed_identity":
        need("organization")
    elif method == "access_token":
        need("access_token")
    elif method not in AUTH_METHODS:
        raise ExoConfigError("auth_method must be one of %s, got %r." % (", ".join(AUTH_METHODS), method),
                             details={"option": "auth_method"})


def resolve_token_cache_path(params):
    """token_cache_path, the default location when unset, or None when set to '' (cache disabled)."""
    value = params.get("token_cache_path")
    if value is None:
        value = DEFAULT_TOKEN_CACHE_PATH
    if not value:
        return None
    return os.path.abspath(os.path.expanduser(os.path.expandvars(value)))


# ---------------------------------------------------------------------------------------------
# Tokens and claims
# ---------------------------------------------------------------------------------------------

def decode_claims(token):
    """The payload of a JWT, decoded without verification (the service verifies it)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8"))
    except (IndexError, ValueError, TypeError, UnicodeError, binascii.Error):
        raise ExoAuthError("access_token is not a JWT access token (three base64url parts); give the token itself, "
                           "without a 'Bearer ' prefix.", details={"option": "access_token"})
    if not isinstance(claims, dict):
        raise ExoAuthError("access_token does not carry a JSON claims set.", details={"option": "access_token"})
    return claims


def token_identity(claims):
    """Who a token belongs to: upn, oid, appid, tid, roles, scp, app_only."""
    upn = claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username")
    scp = claims.get("scp")
    app_only = claims.get("idtyp") == "app" or (not scp and not upn)
    return {
        "upn": upn,
        "oid": claims.get("oid"),
        "appid": claims.get("appid") or claims.get("azp"),
        "tid": claims.get("tid"),
        "roles": list(claims.get("roles") or []),
        "scp": scp,
        "app_only": bool(app_only),
        "aud": claims.get("aud"),
    }


def iso_utc(epoch):
    if not epoch:
        return None
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refresh_margin(token):
    """5 minutes, or half the lifetime for short-lived tokens (test tenants issue 5-second tokens)."""
    lifetime = None
    iat = token.claims.get("iat") or token.claims.get("nbf")
    if iat:
        try:
            lifetime = float(token.expires_on) - float(iat)
        except (TypeError, ValueError):
            lifetime = None
    if lifetime is not None and lifetime > 0:
        return min(REFRESH_MARGIN, lifetime / 2.0)
    return REFRESH_MARGIN


# ---------------------------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------------------------

_PEM_KEY_RE = re.compile(r"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL)
_PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)

Certificate = namedtuple("Certificate", ["private_key_pem", "certificate_pem", "thumbprint", "thumbprint_sha256",
                                         "not_after"])


def load_certificate(params):
    """The private key and certificate from certificate_path (PEM or PFX) or certificate (PEM content)."""
    if not HAS_CRYPTOGRAPHY:
        raise ExoConfigError("auth_method=certificate needs the Python library cryptography: %s" % CRYPTOGRAPHY_IMPORT_ERROR)
    password = params.get("certificate_password")
    password_bytes = password.encode("utf-8") if password else None
    if params.get("certificate_path"):
        path = params["certificate_path"]
        source = "certificate_path %s" % path
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (IOError, OSError) as exc:
            raise ExoConfigError("Cannot read certificate_path %s: %s." % (path, exc.strerror or exc),
                                 details={"option": "certificate_path"})
    else:
        source = "certificate"
        data = params["certificate"].encode("utf-8")

    if b"-----BEGIN" in data:
        text = data.decode("utf-8", "replace")
        key_match = _PEM_KEY_RE.search(text)
        cert_match = _PEM_CERT_RE.search(text)
        if not key_match or not cert_match:
            raise ExoConfigError(
                "%s must hold both the private key and the certificate in PEM form (found %s)." % (
                    source, "no private key" if not key_match else "no certificate"),
                details={"option": "certificate_path" if params.get("certificate_path") else "certificate"})
        encrypted = "ENCRYPTED" in key_match.group(0)
        if encrypted and not password_bytes:
            raise ExoConfigError("The private key in %s is encrypted: give certificate_password." % source,
                                 details={"option": "certificate_password"})
        try:
            key = serialization.load_pem_private_key(key_match.group(0).encode("ascii"),
                                                     password=password_bytes if encrypted else None)
        except (ValueError, TypeError):
            raise ExoConfigError("Cannot load the private key in %s: certificate_password is wrong or the key is "
                                 "damaged." % source, details={"option": "certificate_password"})
        try:
            cert = x509.load_pem_x509_certificate(cert_match.group(0).encode("ascii"))
        except ValueError:
            raise ExoConfigError("The certificate in %s is not a valid PEM certificate." % source,
                                 details={"option": "certificate_path"})
    else:
        try:
            key, cert, _extra = pkcs12.load_key_and_certificates(data, password_bytes)
        except (ValueError, TypeError):
            raise ExoConfigError(
                "Cannot open %s as a PFX/PKCS#12 file: certificate_password is wrong or missing, or the file is neither "
                "PFX nor PEM." % source, details={"option": "certificate_password"})
        if key is None or cert is None:
            raise ExoConfigError("The PFX file %s must hold the private key and its certificate." % source,
                                 details={"option": "certificate_path"})

    # msal wants an unencrypted PEM key; it exists in memory only.
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    try:
        not_after = cert.not_valid_after_utc
    except AttributeError:  # cryptography < 42
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return Certificate(
        private_key_pem=key_pem,
        certificate_pem=cert_pem,
        thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),  # what the Entra portal shows
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
        not_after=not_after,
    )


# ---------------------------------------------------------------------------------------------
# Token cache shared by forks
# ---------------------------------------------------------------------------------------------

class TokenCacheFile:
    """msal-extensions PersistedTokenCache at ``path`` plus an exclusive fcntl lock for whole acquisitions."""

    def __init__(self, path):
        self.path = path
        self.lock_path = path + ".lock"
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            # Forks starting together may race to create it.
            try:
                os.makedirs(directory, 0o700)
            except OSError:
                if not os.path.isdir(directory):
                    raise
        self.cache = PersistedTokenCache(FilePersistence(path), lock_location=path + ".msal.lock")

    @contextlib.contextmanager
    def locked(self, shared=False):
        """Exclusive for "read -> acquire -> write"; shared for a read that makes no request."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if HAS_FCNTL:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield self.cache
        finally:
            try:
                if os.path.exists(self.path) and (os.stat(self.path).st_mode & 0o777) != 0o600:
                    os.chmod(self.path, 0o600)
            finally:
                if HAS_FCNTL:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


class _MemoryCache:
    """token_cache_path='' : an in-process cache only."""

    def __init__(self):
        self.cache = msal.SerializableTokenCache() if HAS_MSAL else None

    @contextlib.contextmanager
    def locked(self, shared=False):
        yield self.cache


# ---------------------------------------------------------------------------------------------
# Entra error -> actionable message
# ---------------------------------------------------------------------------------------------

def _aadsts_codes(result):
    codes = [int(c) for c in (result.get("error_codes") or []) if str(c).isdigit()]
    for match in re.findall(r"AADSTS(\d+)", result.get("error_description") or ""):
        if int(match) not in codes:
            codes.append(int(match))
    return codes


class TokenProvider:
    """Access tokens for resources, from the flow the options select, cached across tasks and forks."""

    def __init__(self, params, endpoints, http, warn, display=None):
        self.params = params
        self.endpoints = endpoints
        self.http = http
        self.warn = warn
        self.display = display
        self.method = select_auth_method(params)
        validate_auth_params(params, self.method)
        self.app_id = params.get("app_id") or (EXO_PUBLIC_CLIENT_ID if self.method in ("password", "device_code") else None)
        self.certificate = None
        self._tokens = {}
        self._force = set()
        self._app = None
        path = resolve_token_cache_path(params)
        self.cache_path = path
        self._store = None
        self.token_requests = 0

    # -- public interface ---------------------------------------------------------------------

    @property
    def app_only(self):
        if self.method == "access_token":
            try:
                return token_identity(decode_claims(self.params["access_token"].split()[-1]))["app_only"]
            except ExoAuthError:
                return False
        return self.method in APP_ONLY_METHODS

    def get_token(self, resource):
        token = self._tokens.get(resource)
        if token is not None and resource not in self._force and token.expires_on - time.time() > _refresh_margin(token):
            return token
        force = resource in self._force
        self._force.discard(resource)
        token = self._acquire(resource, force=force)
        self._tokens[resource] = token
        self.http.add_secret(token.token)
        return token

    def invalidate(self, resource):
        """Forget the token for the resource; the next get_token asks Entra ID for a new one."""
        self._tokens.pop(resource, None)
        self._force.add(resource)

    def device_code_sign_in(self, resource, show):
        """Controller side of device code: show the URL and code, wait, cache the result (lock held throughout,
        so parallel tasks wait for this sign-in instead of starting their own)."""
        scopes = self._scopes(resource)
        try:
            app = self._application()
            with self._locked():
                # A cached sign-in that can no longer be refreshed just means signing in again here.
                cached = self._silent(app, scopes, renewable_only=True)
                if cached:
                    return self._finish(cached, resource), False
                flow = app.initiate_device_flow(scopes=scopes)
                if "user_code" not in flow:
                    self._raise_entra(flow)
                show(flow["message"])
                result = app.acquire_token_by_device_flow(flow)
                self.token_requests += 1
                return self._finish(result, resource), True
        except (ExoAuthError, ExoConfigError):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self._translate_exception(exc)

    # -- internals ------------------------------------------------------------------------------

    def _scopes(self, resource):
        return ["%s/.default" % resource.rstrip("/")]

    def _store_for(self):
        if self._store is None:
            if self.cache_path and HAS_MSAL:
                try:
                    self._store = TokenCacheFile(self.cache_path)
                except (IOError, OSError) as exc:
                    raise ExoConfigError(
                        "Cannot use token_cache_path %s: %s. Give a writable path, or '' to disable the cache." % (
                            self.cache_path, exc.strerror or exc), details={"option": "token_cache_path"})
            else:
                self._store = _MemoryCache()
        return self._store

    @contextlib.contextmanager
    def _locked(self, shared=False):
        with self._store_for().locked(shared=shared):
            yield

    def _instance_discovery(self):
        host = self.endpoints.authority_host.split("://", 1)[-1].split("/", 1)[0].lower()
        return None if host in KNOWN_AUTHORITY_HOSTS else False

    def _application(self):
        if self._app is not None:
            return self._app
        common = dict(
            authority=self.endpoints.authority,
            token_cache=self._store_for().cache,
            http_client=self.http.msal_http_client(),
            instance_discovery=self._instance_discovery(),
        )
        try:
            if self.method == "client_secret":
                self._app = msal.ConfidentialClientApplication(self.app_id, client_credential=self.params["client_secret"], **common)
            elif self.method == "certificate":
                self.certificate = load_certificate(self.params)
                # public_certificate without thumbprint: msal signs PS256 with x5t#S256 and sends x5c.
                credential = {"private_key": self.certificate.private_key_pem,
                              "public_certificate": self.certificate.certificate_pem}
                self._app = msal.ConfidentialClientApplication(self.app_id, client_credential=credential, **common)
            elif self.method in ("password", "device_code"):
                self._app = msal.PublicClientApplication(self.app_id, **common)
            elif self.method == "managed_identity":
                client_id = self.params.get("managed_identity_client_id")
                identity = (msal.UserAssignedManagedIdentity(client_id=client_id) if client_id
                            else msal.SystemAssignedManagedIdentity())
                self._app = msal.ManagedIdentityClient(identity, http_client=self.http.msal_http_client(),
                                                       token_cache=self._store_for().cache)
        except ValueError as exc:
            raise self._translate_exception(exc)
        except Exception as exc:  # pylint: disable=broad-except
            if requests is not None and isinstance(exc, requests.exceptions.RequestException):
                raise self._translate_exception(exc)
            raise
        return self._app

    def _acquire(self, resource, force=False):
        if self.method == "access_token":
            return self._given_token(resource, force)
        scopes = self._scopes(resource)
        try:
            # Built outside the lock: msal reads the tenant's OpenID configuration here, and forks
            # need not wait for each other's discovery requests.
            app = self._application()
            if self.method in ("client_secret", "certificate") and not force:
                # Reading a cached app token makes no request, so forks do it side by side.
                with self._locked(shared=True):
                    result = app.acquire_token_silent(scopes, account=None)
                if result and "access_token" in result:
                    return self._finish(result, resource)
            with self._locked():
                result = self._acquire_locked(app, resource, scopes, force)
        except (ExoAuthError, ExoConfigError):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self._translate_exception(exc)
        return self._finish(result, resource)

    def _acquire_locked(self, app, resource, scopes, force):
        """Cache lookup and, when needed, the one token request; the caller holds the exclusive lock."""
        if self.method in ("client_secret", "certificate"):
            if force:
                self._drop_cached_app_tokens(app, scopes)
            result = app.acquire_token_silent(scopes, account=None)
            if not result:
                self.token_requests += 1
                result = app.acquire_token_for_client(scopes=scopes)
            return result
        if self.method == "managed_identity":
            if force:
                self._drop_cached_app_tokens(app, scopes, resource=resource)
            return app.acquire_token_for_client(resource=resource)
        if self.method == "password":
            result = self._silent(app, scopes, force=force)
            if not result:
                self.token_requests += 1
                result = app.acquire_token_by_username_password(
                    self.params["user_principal_name"], self.params["password"], scopes=scopes)
            return result
        # device_code: the controller signed in already (exo_connect's action plugin)
        result = self._silent(app, scopes, force=force)
        if not result:
            upn = self.params.get("user_principal_name")
            raise ExoAuthError(SIGN_IN_FIRST.format(who=" for %s" % upn if upn else ""), code="sign_in_required")
        return result

    def _drop_cached_app_tokens(self, app, scopes, resource=None):
        """Remove cached app-only access tokens for the scopes, so a token the service refused is not reused."""
        cache = self._store_for().cache
        target = set(s.lower() for s in scopes)
        if resource:
            target.add(resource.lower())
        for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            entry_target = set((entry.get("target") or "").lower().split())
            if entry_target & target:
                cache.remove_at(entry)

    def _silent(self, app, scopes, force=False, renewable_only=False):
        upn = self.params.get("user_principal_name")
        accounts = app.get_accounts(username=upn) if upn else app.get_accounts()
        if not accounts:
            return None
        if len(accounts) > 1 and not upn:
            raise ExoConfigError(
                "The token cache holds sign-ins for several accounts (%s): set user_principal_name to choose one." % (
                    ", ".join(sorted(a.get("username") or "?" for a in accounts))),
                details={"option": "user_principal_name"})
        result = app.acquire_token_silent_with_error(scopes, account=accounts[0], force_refresh=force)
        if result and "access_token" not in result:
            # An expired or revoked refresh token: password sign-ins start over, device code reports it.
            if self.method == "device_code" and not renewable_only:
                raise ExoAuthError(
                    "The cached device code sign-in can no longer be refreshed (%s). Run "
                    "m365ops.exchange_online.exo_connect again to sign in." % self._short(result), code="sign_in_required")
            return None
        return result

    def _given_token(self, resource, force):
        token = self.params["access_token"].strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        claims = decode_claims(token)
        exp = claims.get("exp")
        if force:
            raise ExoAuthError(
                "The service refused the given access_token (HTTP 401): it has expired or was revoked, or it was issued "
                "for another resource. Get a new token for %s/.default and pass it in access_token." % resource.rstrip("/"),
                status=401, code="access_token_rejected")
        if not exp:
            raise ExoAuthError("access_token has no exp claim; give an Entra ID access token.",
                               details={"option": "access_token"})
        if float(exp) <= time.time():
            raise ExoAuthError(
                "access_token expired at %s: get a new token (for example with az account get-access-token "
                "--resource %s) and pass it in access_token." % (iso_utc(exp), resource.rstrip("/")),
                code="access_token_expired", details={"option": "access_token", "expired_at": iso_utc(exp)})
        self._check_upn(claims)
        return AccessToken(token, int(exp), claims)

    def _finish(self, result, resource):
        if not result or "access_token" not in result:
            self._raise_entra(result or {})
        token = result["access_token"]
        try:
            claims = decode_claims(token)
        except ExoAuthError:
            claims = {}
        expires_on = claims.get("exp")
        if not expires_on:
            expires_on = int(time.time()) + int(result.get("expires_in") or 0)
        self._check_upn(claims)
        return AccessToken(token, int(expires_on), claims)

    def _check_upn(self, claims):
        """The V1 guide warns that single sign-on can sign in another account than the one named."""
        wanted = self.params.get("user_principal_name")
        if not wanted or self.method in APP_ONLY_METHODS:
            return
        got = token_identity(claims).get("upn")
        if got and got.lower() != wanted.lower():
            raise ExoAuthError(
                "Signed in as %s, but user_principal_name is %s. The token belongs to another account (single sign-on "
                "or a cached sign-in picked it): sign in as %s, or set user_principal_name to %s." % (got, wanted, wanted, got),
                code="upn_mismatch", details={"user_principal_name": wanted, "token_user": got})

    @staticmethod
    def _short(result):
        description = (result.get("error_description") or result.get("error") or "").strip().splitlines()
        return description[0] if description else "unknown error"

    def _who(self):
        if self.method in ("password", "device_code"):
            return self.params.get("user_principal_name") or "the user"
        return "app %s" % self.app_id

    def _raise_entra(self, result):
        codes = _aadsts_codes(result)
        short = redact(self._short(result), [self.params.get(s) for s in ("client_secret", "password")])
        tenant = self.endpoints.authority_tenant
        app = self.app_id
        code = "AADSTS%d" % codes[0] if codes else result.get("error")
        details = {"error": result.get("error"), "error_codes": codes}

        def fail(message):
            raise ExoAuthError(message, status=result.get("status_code") or 400 if codes else None, code=code,
                               details=details)

        if 50126 in codes:
            fail("Sign-in failed for %s: the user name or password is wrong (AADSTS50126). Check user_principal_name and "
                 "password." % self.params.get("user_principal_name"))
        if 50076 in codes or 50079 in codes:
            fail("%s must use multi-factor authentication (AADSTS%d), which a password sign-in cannot do: use "
                 "auth_method=device_code or an app (auth_method=certificate or client_secret). A device code sign-in "
                 "does MFA once in a browser; later runs are silent from the cached refresh token." % (
                     self.params.get("user_principal_name"), 50076 if 50076 in codes else 50079))
        if 7000222 in codes:
            fail("The client secret of app %s has expired (AADSTS7000222). Create a new secret under App registrations > "
                 "Certificates & secrets in Entra ID and update client_secret (or use a certificate)." % app)
        if 7000215 in codes:
            fail("Invalid client secret for app %s (AADSTS7000215): give the secret's Value, not its Secret ID, "
                 "and check app_id." % app)
        if 700027 in codes:
            thumb = self.certificate.thumbprint if self.certificate else "?"
            fail("Entra ID does not know the certificate with thumbprint %s for app %s (AADSTS700027). Upload its public "
                 "part under App registrations > Certificates & secrets, or use the certificate registered there." % (thumb, app))
        if 700016 in codes:
            fail("Application %s was not found in tenant %s (AADSTS700016): check app_id and organization, and that an "
                 "administrator of that tenant granted consent to the app." % (app, tenant))
        if 90002 in codes or 90023 in codes:
            fail("Tenant %s was not found (AADSTS%d): check organization (the .onmicrosoft.com domain or tenant GUID), "
                 "delegated_organization and exchange_environment_name." % (tenant, 90002 if 90002 in codes else 90023))
        if result.get("error") == "authorization_pending" or 70016 in codes or 70020 in codes:
            fail("The device code expired before the sign-in was completed (%s). Run the task again and finish the "
                 "sign-in within the time shown." % short)
        fail("Sign-in to Entra ID failed for %s: %s" % (self._who(), short))

    def _translate_exception(self, exc):
        """msal and requests exceptions -> ExoAuthError with what to do."""
        text = redact(str(exc), [self.params.get(s) for s in ("client_secret", "password", "certificate_password")])
        if "AADSTS90002" in text or "OIDC Discovery failed" in text or "Unable to get authority configuration" in text:
            return ExoAuthError(
                "Tenant %s was not found at %s (AADSTS90002): check organization (the .onmicrosoft.com domain or tenant "
                "GUID), delegated_organization, exchange_environment_name and azure_ad_authorization_endpoint_uri." % (
                    self.endpoints.authority_tenant, self.endpoints.authority_host), code="AADSTS90002")
        if requests is not None and isinstance(exc, requests.exceptions.SSLError):
            return ExoAuthError("TLS verification failed while signing in at %s: give the CA bundle in ca_path "
                                "(or validate_certs=false only for testing)." % self.endpoints.authority_host)
        if requests is not None and isinstance(exc, requests.exceptions.RequestException):
            url = getattr(getattr(exc, "request", None), "url", None) or ""
            host = _netloc(url) if url else "an identity endpoint"
            if self.method == "password" and url and host != _netloc(self.endpoints.authority_host):
                # msal reached Entra ID, which named the domain's own (federated) sign-in server.
                return ExoAuthError(
                    "The federated identity provider of %s is unreachable (%s: %s). Password sign-in for a federated "
                    "domain goes through the organization's own sign-in server (AD FS or similar): check that it is up "
                    "and reachable from here, or use auth_method=device_code or an app." % (
                        self.params.get("user_principal_name"), host, _reason_of(text)), code="federation_unreachable")
            if self.method == "managed_identity":
                return ExoAuthError(
                    "The managed identity endpoint is unreachable (%s): auth_method=managed_identity works only on an "
                    "Azure host with a managed identity (VM, App Service, Functions, Arc)." % _reason_of(text),
                    code="managed_identity_unavailable")
            return ExoAuthError("Cannot reach %s while signing in: %s. Check network access, proxy and "
                                "azure_ad_authorization_endpoint_uri." % (host, _reason_of(text)), code="connection_error")
        name = type(exc).__name__
        if name == "ManagedIdentityError" or "managed identity" in text.lower():
            return ExoAuthError("Managed identity sign-in failed: %s. auth_method=managed_identity works only on an Azure "
                                "host with a managed identity." % text, code="managed_identity_unavailable")
        if isinstance(exc, ValueError):
            return ExoAuthError("Sign-in to Entra ID failed for %s: %s" % (self._who(), text))
        return ExoAuthError("Sign-in to Entra ID failed for %s: %s: %s" % (self._who(), name, text))


def _netloc(url):
    """host[:port] of a URL, without the default https port."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0].lower()
    return netloc[:-4] if netloc.endswith(":443") else netloc


_REASON_PATTERNS = (
    r"\[Errno [^\]]+\] ([^'\")]+)",
    r"(Connection refused|Name or service not known|timed out|Connection reset by peer|No route to host)",
)


def _reason_of(text):
    for pattern in _REASON_PATTERNS:
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    return text[:200]


class BearerAuth:
    """The ``auth`` object HttpClient.request takes: a bearer header and one refresh on 401."""

    def __init__(self, provider, resource):
        self.provider = provider
        self.resource = resource

    def header(self):
        return "Bearer %s" % self.provider.get_token(self.resource).token

    def refresh(self):
        self.provider.invalidate(self.resource)
