# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated Entra ID (Azure AD) v2.0 endpoints, enough for real msal with a custom authority.

Wire formats follow reference exchange-online-rest.md §12 (scopes, client ids, tenant discovery) and the
Microsoft identity platform protocol docs (OpenID configuration, token endpoint, device code, error body
``{"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"}``).
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import os
import re
import threading
import time
import uuid
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

from . import directory as dirmod
from .core import (EXCHANGE_APP_ID, EXCHANGE_RESOURCE, GRAPH_APP_ID, GRAPH_RESOURCE, SCC_RESOURCE,
                   Response, Service)

GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE_JWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = frozenset(["openid", "profile", "offline_access", "email"])
GRANT_NAMES = {"client_credentials": "client_credentials", "password": "password", GRANT_DEVICE_CODE: "device_code",
               "refresh_token": "refresh_token"}
DEVICE_CODE_LIFETIME = 900
_ENTRA_PATH = re.compile(r"^/[^/]+/(v2\.0/\.well-known/|\.well-known/|oauth2/|discovery/)")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class EntraError(Exception):
    """An error answered in Entra ID's shape."""

    def __init__(self, status, error, code, message, **extra):
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.message = message
        self.extra = extra


def entra_error_response(status, error, code, message, correlation_id=None, headers=None, **extra):
    """Entra ID's error body; description ends with Trace ID / Correlation ID / Timestamp like the real one."""
    trace_id = str(uuid.uuid4())
    correlation_id = correlation_id or str(uuid.uuid4())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    description = "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s" % (code, message, trace_id,
                                                                                  correlation_id, stamp)
    body = {"error": error, "error_description": description, "error_codes": [code], "timestamp": stamp,
            "trace_id": trace_id, "correlation_id": correlation_id,
            "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}
    body.update(extra)
    return Response.json(status, body, headers)


class EntraService(Service):
    """OpenID discovery, user realm, token and device code endpoints (+0 address, port 443)."""

    name = "entra"

    def __init__(self, sim):
        self.sim = sim
        self.directory = sim.directory or dirmod.Directory(sim)
        sim.directory = self.directory
        self._lock = threading.Lock()
        self._device_codes = {}  # device_code -> dict
        self._preapproved = []  # user names approved before a code was requested
        self._refresh_tokens = {}  # refresh token -> dict(user, client_id, tenant_id, mfa)
        # an unreachable federation IdP: a closed port on the instance's own address
        self.federation_base = "https://%s:1" % sim.addresses["entra"]

    # ---- routing -----------------------------------------------------------------------------------
    def claims(self, req):
        path = req.path
        return (path.startswith(("/common/", "/organizations/", "/consumers/")) or path == "/devicelogin"
                or _ENTRA_PATH.match(path) is not None)

    def error_response(self, status, code, message, headers=None):
        error = "temporarily_unavailable" if status in (429, 500, 502, 503, 504) else "invalid_request"
        numeric = {429: 50196, 400: 900144}.get(status, 90033)
        return entra_error_response(status, error, numeric, "%s (%s)" % (message, code), headers=headers)

    def handle(self, req):
        parts = req.path.strip("/").split("/")
        try:
            if req.path == "/devicelogin":
                return Response.text(200, "<html><body>Device sign-in is approved through the simulator's control API: "
                                          "POST /device-codes/approve.</body></html>", "text/html; charset=utf-8")
            if parts[0] == "common" and len(parts) >= 3 and parts[1] == "discovery" and parts[2] == "instance":
                return self.instance_discovery(req)
            if parts[0] == "common" and len(parts) == 3 and parts[1] == "userrealm":
                return self.user_realm(req, unquote(parts[2]))
            tenant = parts[0]
            rest = "/".join(parts[1:])
            if rest in ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"):
                return self.openid_configuration(req, tenant, v2=rest.startswith("v2.0"))
            if rest in ("discovery/v2.0/keys", "discovery/keys"):
                return Response.json(200, self.sim.tokens.jwks())
            if rest in ("oauth2/v2.0/token", "oauth2/token") and req.method == "POST":
                return self.token(req, tenant)
            if rest in ("oauth2/v2.0/devicecode", "oauth2/devicecode") and req.method == "POST":
                return self.device_code(req, tenant)
            if rest in ("oauth2/v2.0/authorize", "oauth2/authorize"):
                raise EntraError(400, "invalid_request", 50011, "Interactive (browser) sign-in is not simulated; "
                                 "use device code, password, client credentials or managed identity.")
        except EntraError as exc:
            return entra_error_response(exc.status, exc.error, exc.code, exc.message,
                                        req.headers.get("client-request-id"), **exc.extra)
        return None

    # ---- discovery -----------------------------------------------------------------------------------
    def origin(self):
        return self.sim.origin("entra")

    def resolve_tenant(self, tenant):
        """Tenant for a path segment; None for common/organizations; EntraError AADSTS90002 when unknown."""
        if tenant.lower() in ("common", "organizations", "consumers"):
            return None
        found = self.directory.tenant(tenant)
        if found is None:
            raise EntraError(400, "invalid_tenant", 90002,
                             "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing "
                             "into the correct cloud. Check with your subscription administrator, this may happen if there "
                             "are no active subscriptions for the tenant." % tenant)
        return found

    def instance_discovery(self, req):
        self.sim.counters.incr("entra", "instance_discovery")
        auth_endpoint = req.query.get("authorization_endpoint", "")
        tenant = urlsplit(auth_endpoint).path.strip("/").split("/")[0] or "common"
        host = self.sim.addresses["entra"]
        return Response.json(200, {
            "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration" % (self.origin(), tenant),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]})

    def openid_configuration(self, req, tenant, v2=True):
        self.sim.counters.incr("entra", "openid_configuration")
        found = self.resolve_tenant(tenant)
        segment = found.tenant_id if found else tenant.lower()
        issuer_tid = found.tenant_id if found else "{tenantid}"
        base = "%s/%s" % (self.origin(), segment)
        suffix = "/v2.0" if v2 else ""
        config = {
            "token_endpoint": "%s/oauth2%s/token" % (base, suffix),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": "%s/discovery%s/keys" % (base, suffix),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": ("%s/%s/v2.0" % (self.origin(), issuer_tid)) if v2 else "https://sts.windows.net/%s/" % issuer_tid,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "%s/oidc/userinfo" % self.sim.origin("graph"),
            "authorization_endpoint": "%s/oauth2%s/authorize" % (base, suffix),
            "device_authorization_endpoint": "%s/oauth2%s/devicecode" % (base, suffix),
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": "%s/oauth2%s/logout" % (base, suffix),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                                 "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": "%s/kerberos" % base,
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": self.sim.addresses["graph"],
            "rbac_url": "https://pas.windows.net",
        }
        return Response.json(200, config)

    def user_realm(self, req, upn):
        """GET /common/userrealm/{upn}?api-version=1.0 (msal asks it at port 443, the port dropped)."""
        self.sim.counters.incr("entra", "userrealm")
        domain = upn.rpartition("@")[2].lower()
        body = {"ver": "1.0", "NameSpaceType": "Unknown", "account_type": "Unknown", "domain_name": domain,
                "cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline"}
        if domain == self.directory.federated_domain:
            body.update({"NameSpaceType": "Federated", "account_type": "Federated", "federation_protocol": "WSTrust",
                         "federation_metadata_url": self.federation_base + "/adfs/services/trust/mex",
                         "federation_active_auth_url": self.federation_base + "/adfs/services/trust/2005/usernamemixed",
                         "federation_global_version": -1})
        elif self.directory.tenant(domain) is not None:
            body.update({"NameSpaceType": "Managed", "account_type": "Managed"})
        return Response.json(200, body)

    # ---- token endpoint ------------------------------------------------------------------------------
    @staticmethod
    def form(req):
        ctype = (req.headers.get("Content-Type") or "").lower()
        if req.body and "json" in ctype:
            raise EntraError(400, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
        try:
            return dict(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise EntraError(400, "invalid_request", 900144, "The request body is not valid UTF-8.") from None

    def token(self, req, tenant_segment):
        form = self.form(req)
        grant = form.get("grant_type", "")
        self.sim.counters.incr("token_requests", GRANT_NAMES.get(grant, grant or "missing"))
        try:
            if not grant:
                raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
            if grant not in GRANT_NAMES:
                raise EntraError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'." % grant)
            tenant = self.resolve_tenant(tenant_segment)
            request_url = req.url(with_query=False)
            if grant == "client_credentials":
                body = self.grant_client_credentials(form, tenant, tenant_segment, request_url)
            elif grant == "password":
                body = self.grant_password(form, tenant, request_url)
            elif grant == GRANT_DEVICE_CODE:
                body = self.grant_device_code(form, tenant, request_url)
            else:
                body = self.grant_refresh_token(form, tenant, request_url)
        except EntraError as exc:
            self.sim.counters.incr("token_errors", "AADSTS%d" % exc.code)
            raise
        return Response.json(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def resource_of(self, scopes, tenant, client_credentials=False):
        """(service, resource, delegated scope names) for the requested scopes; AADSTS70011 / 500011 / 1002012."""
        resource_scopes = [s for s in scopes if s.lower() not in OIDC_SCOPES]
        if not resource_scopes:
            raise EntraError(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. "
                             "The scope '%s' does not name a resource." % " ".join(scopes))
        found = set()
        for scope in resource_scopes:
            if scope.endswith("/.default"):
                resource, name = scope[:-len("/.default")].rstrip("/"), ".default"
            elif "/" in scope.replace("://", ""):
                resource, dummy, name = scope.rpartition("/")
                resource = resource.rstrip("/")
            else:
                raise EntraError(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not "
                                 "valid. The scope '%s' is not valid." % scope)
            found.add((resource, name))
        resources = {pair[0] for pair in found}
        if len(resources) > 1:
            raise EntraError(400, "invalid_scope", 28000, "Provided value for the input parameter scope is not valid "
                             "because it contains more than one resource. Scope %s is not valid." % " ".join(scopes))
        resource = resources.pop()
        service = self.service_of_resource(resource)
        if service is None:
            tenant_name = tenant.name if tenant else "common"
            raise EntraError(400, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant "
                             "named %s. This can happen if the application has not been installed by the administrator of "
                             "the tenant or consented to by any user in the tenant. You might have sent your authentication "
                             "request to the wrong tenant." % (resource, tenant_name))
        if client_credentials and any(pair[1] != ".default" for pair in found):
            raise EntraError(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client "
                             "credential flows must have a scope value with /.default suffixed to the resource "
                             "identifier (application ID URI)." % " ".join(resource_scopes))
        return service, resource

    def service_of_resource(self, resource):
        key = resource.rstrip("/").lower()
        sim = self.sim
        table = {
            "exchange": (sim.origin("exchange"), EXCHANGE_RESOURCE, "https://outlook.office.com", EXCHANGE_APP_ID),
            "scc": (sim.origin("scc"), sim.origin("scc_regional"), SCC_RESOURCE),
            "graph": (sim.origin("graph"), GRAPH_RESOURCE, GRAPH_APP_ID),
        }
        for service, names in table.items():
            if key in {n.lower() for n in names}:
                return service
        return None

    @staticmethod
    def roles_for(service, roles):
        wanted = dirmod.GRAPH_APP_ROLES if service == "graph" else dirmod.EXCHANGE_APP_ROLES
        return [r for r in roles if r in wanted]

    def app_for(self, client_id, tenant):
        app = self.directory.app_by_id(client_id)
        if app is None or tenant.tenant_id not in app.tenants:
            raise EntraError(400, "unauthorized_client", 700016,
                             "Application with identifier '%s' was not found in the directory '%s'. This can happen if the "
                             "application has not been installed by the administrator of the tenant or consented to by any "
                             "user in the tenant. You may have sent your authentication request to the wrong tenant."
                             % (client_id, tenant.display_name))
        return app

    def grant_client_credentials(self, form, tenant, tenant_segment, request_url):
        client_id = form.get("client_id", "")
        if tenant is None:
            tenant = self.directory.home
        if not client_id:
            raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
        app = self.app_for(client_id, tenant)
        if form.get("client_assertion"):
            if form.get("client_assertion_type") != ASSERTION_TYPE_JWT:
                raise EntraError(400, "invalid_request", 50027, "client_assertion_type must be '%s'." % ASSERTION_TYPE_JWT)
            self.check_assertion(app, form["client_assertion"], tenant, tenant_segment, request_url)
            appidacr = "2"
        elif form.get("client_secret"):
            if app.public or not app.secret or not hmac.compare_digest(form["client_secret"], app.secret):
                raise EntraError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                                 "sent in the request is the client secret value, not the client secret ID, for a secret "
                                 "added to app '%s'." % app.app_id)
            if app.secret_expired:
                raise EntraError(401, "invalid_client", 7000222, "The provided client secret keys for app '%s' are expired. "
                                 "Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or "
                                 "consider using certificate credentials for added security: https://aka.ms/certCreds."
                                 % app.app_id)
            appidacr = "1"
        else:
            raise EntraError(401, "invalid_client", 7000218, "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        service, resource = self.resource_of(form.get("scope", "").split(), tenant, client_credentials=True)
        claims = self.app_claims(app.app_id, self.directory.service_principal_id(app, tenant.tenant_id), tenant.tenant_id,
                                 resource, self.roles_for(service, app.roles), app.wids, app.display_name)
        claims["appidacr"] = appidacr
        return self.token_body(claims, form.get("scope", ""))

    def check_assertion(self, app, assertion, tenant, tenant_segment, request_url):
        """private_key_jwt: PS256 (x5t#S256) and RS256 (x5t), signature against the registered certificate."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise EntraError(400, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise EntraError(401, "invalid_client", 5002738, "Invalid JWT token. '%s' is not a supported signature "
                             "algorithm. Supported signing algorithms are: 'RS256, PS256'." % alg)
        try:
            sha256 = base64.urlsafe_b64decode(header["x5t#S256"] + "==") if header.get("x5t#S256") else None
            sha1 = base64.urlsafe_b64decode(header["x5t"] + "==") if header.get("x5t") else None
        except (ValueError, TypeError):
            raise EntraError(400, "invalid_client", 50027, "JWT token is invalid or malformed: bad x5t header.") from None
        if sha256 is None and sha1 is None:
            raise EntraError(401, "invalid_client", 700027, "Client assertion contains no x5t or x5t#S256 header.")
        cert = app.certificate(sha1=sha1, sha256=sha256)
        if cert is None:
            shown = (sha1 or sha256).hex().upper()
            raise EntraError(401, "invalid_client", 700027, "The certificate with identifier used to sign the client "
                             "assertion is not registered on application. [Reason - The key was not found., Thumbprint of "
                             "key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS "
                             "Graph to see configured keys for app Id '%s'.]" % (shown, app.app_id))
        try:
            claims = jwt.decode(assertion, cert.public_key, algorithms=[alg],
                                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False})
        except jwt.InvalidTokenError:
            raise EntraError(401, "invalid_client", 700027, "Client assertion failed signature validation.") from None
        now = time.time()
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - 300 or claims.get("nbf", 0) > now + 300:
            raise EntraError(401, "invalid_client", 700024, "Client assertion is not within its valid time range. "
                             "Current time: %s, assertion valid from %s, expiry time of assertion %s."
                             % (int(now), claims.get("nbf"), claims.get("exp")))
        if claims.get("iss") != app.app_id or claims.get("sub") != app.app_id:
            raise EntraError(401, "invalid_client", 700021, "Client assertion application identifier doesn't match "
                             "'client_id' parameter.")
        accepted = set()
        for segment in (tenant_segment, tenant.tenant_id, tenant.name):
            for path in ("oauth2/v2.0/token", "oauth2/token"):
                accepted.add(("%s/%s/%s" % (self.origin(), segment, path)).lower())
        accepted.add(request_url.rstrip("/").lower())
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if not any(str(a).rstrip("/").lower() in accepted for a in audiences):
            raise EntraError(401, "invalid_client", 700027, "Client assertion contains an invalid audience '%s'; it must "
                             "be the token endpoint." % claims.get("aud"))

    def app_claims(self, appid, oid, tid, resource, roles, wids, display_name):
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % tid, "idp": "https://sts.windows.net/%s/" % tid,
                  "tid": tid, "appid": appid, "azp": appid, "app_displayname": display_name, "idtyp": "app",
                  "oid": oid, "sub": oid, "wids": list(wids), "ver": "1.0"}
        if roles:
            claims["roles"] = list(roles)
        return claims

    def user_claims(self, user, client_id, tenant_id, service, resource, mfa):
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % tenant_id, "tid": tenant_id,
                  "appid": client_id, "azp": client_id, "idtyp": "user", "oid": user.oid, "sub": user.oid,
                  "upn": user.upn, "unique_name": user.upn, "preferred_username": user.upn, "name": user.display_name,
                  "scp": dirmod.DELEGATED_SCOPES[service], "wids": list(user.wids),
                  "amr": ["pwd", "mfa"] if mfa else ["pwd"], "ver": "1.0"}
        if tenant_id != user.tenant_id:
            claims["idp"] = "https://sts.windows.net/%s/" % user.tenant_id
            claims["altsecid"] = "5::%s" % user.oid.replace("-", "")[:16].upper()
        return claims

    def token_body(self, claims, scope):
        token, exp = self.sim.tokens.issue(claims)
        lifetime = max(int(exp - time.time()), 0)
        return {"token_type": "Bearer", "scope": scope, "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": token}

    # ---- delegated grants ----------------------------------------------------------------------------
    def public_client(self, form, tenant):
        client_id = form.get("client_id", "")
        if not client_id:
            raise EntraError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
        app = self.app_for(client_id, tenant)
        if not app.public and not (form.get("client_secret") and app.secret and hmac.compare_digest(form["client_secret"], app.secret)):
            raise EntraError(401, "invalid_client", 7000218, "The request body must contain the following parameter: "
                             "'client_assertion' or 'client_secret'.")
        return app

    def user_tenant(self, user, tenant):
        """The tenant the user signs in to; AADSTS50020 when the user has no access there."""
        if tenant is None or tenant.tenant_id == user.tenant_id:
            return self.directory.tenants[user.tenant_id]
        if tenant.tenant_id in user.partner_tenants:
            return tenant
        raise EntraError(400, "invalid_grant", 50020, "User account '{EUII Hidden}' from identity provider "
                         "'https://sts.windows.net/%s/' does not exist in tenant '%s' and cannot access the application "
                         "in that tenant. The account needs to be added as an external user in the tenant first."
                         % (user.tenant_id, tenant.display_name))

    def grant_password(self, form, tenant, request_url):  # pylint: disable=unused-argument
        user = self.directory.user_by_upn(form.get("username"))
        home = tenant or self.directory.home
        if user is None:
            raise EntraError(400, "invalid_grant", 50034, "The user account {EUII Hidden} does not exist in the %s "
                             "directory. To sign into this application, the account must be added to the directory."
                             % home.name)
        sign_in_tenant = self.user_tenant(user, tenant)
        app = self.public_client(form, sign_in_tenant)
        if user.federated or not hmac.compare_digest(form.get("password", ""), user.password):
            raise EntraError(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
        service, resource = self.resource_of(form.get("scope", "").split(), sign_in_tenant)
        if user.mfa_required:
            # the real AADSTS50076 answer carries suberror and a claims challenge
            raise EntraError(400, "invalid_grant", 50076, "Due to a configuration change made by your administrator, or "
                             "because you moved to a new location, you must use multi-factor authentication to access "
                             "'%s'." % resource, suberror="basic_action",
                             claims='{"access_token":{"capolids":{"essential":true,"values":["%s"]}}}'
                             % self.sim.stable_uuid("ca-policy", "require-mfa"))
        return self.user_token_body(user, app, sign_in_tenant, service, resource, form.get("scope", ""), mfa=False)

    def user_token_body(self, user, app, tenant, service, resource, scope, mfa):
        claims = self.user_claims(user, app.app_id, tenant.tenant_id, service, resource, mfa)
        body = self.token_body(claims, scope)
        scopes = scope.split()
        # msal caches the account from id_token + client_info and refreshes with the refresh token
        now = int(time.time())
        id_claims = {"aud": app.app_id, "iss": "%s/%s/v2.0" % (self.origin(), tenant.tenant_id), "iat": now, "nbf": now,
                     "exp": now + 3600, "name": user.display_name, "oid": user.oid, "preferred_username": user.upn,
                     "sub": self.sim.stable_uuid("sub", user.oid, app.app_id), "tid": tenant.tenant_id, "ver": "2.0"}
        body["id_token"] = jwt.encode(id_claims, self.sim.tokens._key, algorithm="RS256",  # pylint: disable=protected-access
                                      headers={"kid": self.sim.tokens.kid})
        body["client_info"] = _b64url(json.dumps({"uid": user.oid, "utid": user.tenant_id}).encode("utf-8"))
        refresh = "0.Sim" + _b64url(os.urandom(48))
        with self._lock:
            self._refresh_tokens[refresh] = {"user": user.name, "client_id": app.app_id, "tenant_id": tenant.tenant_id,
                                             "mfa": mfa, "issued": now}
            if len(self._refresh_tokens) > 5000:  # keep memory bounded: drop the oldest
                self._refresh_tokens.pop(next(iter(self._refresh_tokens)))
        body["refresh_token"] = refresh
        body["scope"] = " ".join(s for s in scopes if s.lower() not in ("openid", "profile")) or scope
        return body

    def grant_refresh_token(self, form, tenant, request_url):  # pylint: disable=unused-argument
        with self._lock:
            entry = self._refresh_tokens.get(form.get("refresh_token", ""))
        if entry is None:
            raise EntraError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if entry["client_id"] != form.get("client_id", "").lower():
            raise EntraError(400, "invalid_grant", 700003, "Device object was not found in the tenant directory, or "
                             "the refresh token was issued to a different client.")
        user = self.directory.users[entry["user"]]
        sign_in_tenant = self.directory.tenants[entry["tenant_id"]]
        if tenant is not None and tenant.tenant_id != sign_in_tenant.tenant_id:
            sign_in_tenant = self.user_tenant(user, tenant)
        app = self.public_client(form, sign_in_tenant)
        service, resource = self.resource_of(form.get("scope", "").split(), sign_in_tenant)
        return self.user_token_body(user, app, sign_in_tenant, service, resource, form.get("scope", ""), entry["mfa"])

    # ---- device code ---------------------------------------------------------------------------------
    def device_code(self, req, tenant_segment):
        self.sim.counters.incr("entra", "devicecode")
        try:
            form = self.form(req)
            tenant = self.resolve_tenant(tenant_segment)
            client_id = form.get("client_id", "")
            app = self.app_for(client_id, tenant or self.directory.home)
            service, resource = self.resource_of(form.get("scope", "").split(), tenant)
        except EntraError as exc:
            self.sim.counters.incr("token_errors", "AADSTS%d" % exc.code)
            raise
        device_code = "DAQABAAEAAA" + _b64url(os.urandom(36))
        user_code = "".join("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[b % 32] for b in os.urandom(9))
        entry = {"device_code": device_code, "user_code": user_code, "client_id": app.app_id,
                 "tenant_id": tenant.tenant_id if tenant else None, "polls": 0, "approved": None,
                 "scope": form.get("scope", ""), "service": service, "resource": resource,
                 "expires_at": time.time() + DEVICE_CODE_LIFETIME}
        with self._lock:
            now = time.time()
            for code in [c for c, e in self._device_codes.items() if e["expires_at"] < now - 600]:
                del self._device_codes[code]
            if self._preapproved:
                entry["approved"] = self._preapproved.pop(0)
            self._device_codes[device_code] = entry
        uri = "%s/devicelogin" % self.origin()
        return Response.json(200, {
            "user_code": user_code, "device_code": device_code, "verification_uri": uri,
            "expires_in": DEVICE_CODE_LIFETIME, "interval": 1,
            "message": "To sign in, use a web browser to open the page %s and enter the code %s to authenticate."
                       % (uri, user_code)})

    def grant_device_code(self, form, tenant, request_url):  # pylint: disable=unused-argument
        code = form.get("device_code", "")
        with self._lock:
            entry = self._device_codes.get(code)
            if entry is not None:
                entry["polls"] += 1
                limit = self.sim.device_code_polls
                if entry["approved"] is None and limit > 0 and entry["polls"] > limit:
                    entry["approved"] = "mfa_admin"
        if entry is None:
            raise EntraError(400, "invalid_grant", 70000, "The provided value for the input parameter 'device_code' is "
                             "not valid.")
        if time.time() > entry["expires_at"]:
            raise EntraError(400, "expired_token", 70020, "The provided value for the input parameter 'device_code' is "
                             "not valid. This device code has expired.")
        if entry["approved"] is None:
            raise EntraError(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. "
                             "Continue polling.")
        if entry["client_id"] != form.get("client_id", "").lower():
            raise EntraError(400, "invalid_grant", 70000, "The device code was issued to another client.")
        user = self.directory.users[entry["approved"]]
        tenant = self.directory.tenants.get(entry["tenant_id"]) if entry["tenant_id"] else None
        sign_in_tenant = self.user_tenant(user, tenant)
        app = self.app_for(entry["client_id"], sign_in_tenant)
        scope = form.get("scope") or entry["scope"]  # the scope was given when the code was requested
        with self._lock:
            self._device_codes.pop(code, None)  # a device code is redeemed once
        return self.user_token_body(user, app, sign_in_tenant, entry["service"], entry["resource"], scope, mfa=True)

    def approve_device_codes(self, user_name, user_code=None):
        """Approve pending device codes as a user; with none pending, approve the next one requested."""
        user = self.directory.user(user_name)
        if user is None:
            return None
        approved = 0
        with self._lock:
            for entry in self._device_codes.values():
                if entry["approved"] is None and (user_code is None or entry["user_code"] == user_code):
                    entry["approved"] = user.name
                    approved += 1
            if approved == 0 and user_code is None:
                self._preapproved.append(user.name)
        return {"approved": approved, "queued": approved == 0 and user_code is None, "user": user.name}

    def expire_device_codes(self):
        with self._lock:
            for entry in self._device_codes.values():
                entry["expires_at"] = 0
            self._preapproved = []
            return len(self._device_codes)

    def pending_device_codes(self):
        with self._lock:
            return [{"user_code": e["user_code"], "polls": e["polls"], "approved": e["approved"]}
                    for e in self._device_codes.values()]

    # ---- used by the control API --------------------------------------------------------------------
    def managed_identity_token(self, req):
        """App Service managed identity endpoint (GET /msi/token on the control host, api-version 2019-08-01)."""
        self.sim.counters.incr("token_requests", "managed_identity")
        mi = self.directory.managed_identity
        if not hmac.compare_digest(req.headers.get("X-IDENTITY-HEADER") or "", mi["header"]):
            return Response.json(401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER header is missing or wrong."})
        resource = req.query.get("resource", "")
        if resource.endswith("/.default"):
            resource = resource[:-len("/.default")]
        service = self.service_of_resource(resource) if resource else None
        if service is None:
            return Response.json(400, {"statusCode": 400, "message": "AADSTS500011: The resource principal named %s was "
                                       "not found in the tenant." % resource})
        client_id = req.query.get("client_id") or mi["system_client_id"]
        if client_id not in (mi["system_client_id"], mi["user_assigned_client_id"]):
            return Response.json(400, {"statusCode": 400, "message": "No Managed Identity found for specified ClientId/ResourceId/PrincipalId."})
        tid = self.sim.tenant_id
        claims = self.app_claims(client_id, self.sim.stable_uuid("mi-oid", client_id), tid, resource,
                                 self.roles_for(service, dirmod.FULL_ROLES),
                                 self.directory.apps["full"].wids, "managed identity")
        claims["appidacr"] = "2"
        claims["xms_mirid"] = "/subscriptions/%s/resourcegroups/sim/providers/Microsoft.Web/sites/sim" % self.sim.stable_uuid("sub")
        token, exp = self.sim.tokens.issue(claims)
        return Response.json(200, {"access_token": token, "expires_on": str(exp), "resource": resource,
                                   "token_type": "Bearer", "client_id": client_id})

    def issue_for_control(self, spec):
        """POST /tokens/issue: an access token for an app (or user) without a sign-in, for auth_method access_token."""
        resource = spec.get("resource") or self.sim.origin("exchange")
        service = self.service_of_resource(resource)
        if service is None:
            raise ValueError("unknown resource %r: use the connection_uri, graph_uri or security_compliance_uri origin "
                             "or a real resource URL" % resource)
        tenant = self.directory.tenant(spec.get("tenant") or self.sim.tenant_id)
        if tenant is None:
            raise ValueError("unknown tenant %r" % spec.get("tenant"))
        if spec.get("user"):
            user = self.directory.user(spec["user"])
            if user is None:
                raise ValueError("unknown user %r" % spec["user"])
            claims = self.user_claims(user, dirmod.EXO_PUBLIC_CLIENT_ID, tenant.tenant_id, service, resource, True)
        else:
            app = self.directory.apps.get(spec.get("app") or "full")
            if app is None:
                raise ValueError("unknown app %r; known: %s" % (spec.get("app"), ", ".join(sorted(self.directory.apps))))
            claims = self.app_claims(app.app_id, self.directory.service_principal_id(app, tenant.tenant_id),
                                     tenant.tenant_id, resource, self.roles_for(service, app.roles), app.wids,
                                     app.display_name)
        lifetime = spec.get("lifetime")
        token, exp = self.sim.tokens.issue(claims, lifetime=int(lifetime) if lifetime is not None else None)
        return {"access_token": token, "expires_on": exp, "claims": claims}
