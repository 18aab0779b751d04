# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""ExoModule: the shared connection options, one lazily built client, one error path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible.module_utils.errors import AnsibleFallbackNotFound

try:
    import jmespath
    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError:  # the import sanity test runs without jmespath
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoError
from ansible_collections.m365ops.exchange_online.plugins.module_utils._http import (
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    HttpClient,
    redact,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._environments import (
    ENVIRONMENTS,
    DEFAULT_ENVIRONMENT,
    resolve_endpoints,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._auth import (
    AUTH_METHODS,
    HAS_MSAL,
    MSAL_IMPORT_ERROR,
    BearerAuth,
    TokenProvider,
    select_auth_method,
    token_identity,
)

# The organization (arbitration) mailbox used as the app-only routing hint (reference
# exchange-online-rest.md §4): UPN:...@<org>.onmicrosoft.com, or APP:...@<tenant GUID>.
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

SECRET_OPTIONS = ("client_secret", "certificate", "certificate_password", "password", "access_token")


def env_fallback_if_set(*names, **kwargs):
    """env_fallback that skips variables set to an empty string.

    AWX injects every variable of a credential type, empty for a blank field; an empty
    EXO_ENVIRONMENT must mean "not set", not an invalid choice. EXO_TOKEN_CACHE_PATH keeps the
    plain env_fallback: there an empty value means "no cache".
    """
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    raise AnsibleFallbackNotFound


AUTH_ARGUMENT_SPEC = dict(
    organization=dict(type="str", fallback=(env_fallback_if_set, ["EXO_ORGANIZATION"])),
    auth_method=dict(type="str", default="auto", choices=list(AUTH_METHODS),
                     fallback=(env_fallback_if_set, ["EXO_AUTH_METHOD"])),
    app_id=dict(type="str", fallback=(env_fallback_if_set, ["EXO_APP_ID"])),
    client_secret=dict(type="str", no_log=True, fallback=(env_fallback_if_set, ["EXO_CLIENT_SECRET"])),
    certificate_path=dict(type="path", fallback=(env_fallback_if_set, ["EXO_CERTIFICATE_PATH"])),
    certificate=dict(type="str", no_log=True, fallback=(env_fallback_if_set, ["EXO_CERTIFICATE"])),
    certificate_password=dict(type="str", no_log=True, fallback=(env_fallback_if_set, ["EXO_CERTIFICATE_PASSWORD"])),
    user_principal_name=dict(type="str", fallback=(env_fallback_if_set, ["EXO_USER_PRINCIPAL_NAME"])),
    password=dict(type="str", no_log=True, fallback=(env_fallback_if_set, ["EXO_PASSWORD"])),
    access_token=dict(type="str", no_log=True, fallback=(env_fallback_if_set, ["EXO_ACCESS_TOKEN"])),
    managed_identity_client_id=dict(type="str", fallback=(env_fallback_if_set, ["EXO_MANAGED_IDENTITY_CLIENT_ID"])),
    exchange_environment_name=dict(type="str", default=DEFAULT_ENVIRONMENT, choices=sorted(ENVIRONMENTS),
                                   fallback=(env_fallback_if_set, ["EXO_ENVIRONMENT"])),
    connection_uri=dict(type="str", fallback=(env_fallback_if_set, ["EXO_CONNECTION_URI"])),
    azure_ad_authorization_endpoint_uri=dict(type="str", fallback=(env_fallback_if_set, ["EXO_AUTHORITY_URI"])),
    graph_uri=dict(type="str", fallback=(env_fallback_if_set, ["EXO_GRAPH_URI"])),
    delegated_organization=dict(type="str", fallback=(env_fallback_if_set, ["EXO_DELEGATED_ORGANIZATION"])),
    proxy=dict(type="str", fallback=(env_fallback_if_set, ["HTTPS_PROXY"])),
    validate_certs=dict(type="bool", default=True, fallback=(env_fallback_if_set, ["EXO_VALIDATE_CERTS"])),
    ca_path=dict(type="path", fallback=(env_fallback_if_set, ["EXO_CA_PATH"])),
    token_cache_path=dict(type="path", no_log=False, fallback=(env_fallback, ["EXO_TOKEN_CACHE_PATH"])),
    timeout=dict(type="int", default=300, fallback=(env_fallback_if_set, ["EXO_TIMEOUT"])),
)

# Only pairs that can never make sense together; auth_method=auto reports every other
# combination of credentials by name (environment fallbacks often add one more).
AUTH_MUTUALLY_EXCLUSIVE = [
    ["certificate_path", "certificate"],
]
AUTH_REQUIRED_TOGETHER = []
AUTH_REQUIRED_BY = {
    "password": "user_principal_name",
}


def _merge(base, extra):
    return list(base) + [item for item in (extra or []) if item not in base]


class ExoModule(AnsibleModule):
    """AnsibleModule with the collection's connection options and a lazily built client."""

    def __init__(self, argument_spec=None, mutually_exclusive=None, required_together=None, required_by=None, **kwargs):
        spec = dict(AUTH_ARGUMENT_SPEC)
        spec.update(argument_spec or {})
        merged_required_by = dict(AUTH_REQUIRED_BY)
        merged_required_by.update(required_by or {})
        super(ExoModule, self).__init__(
            argument_spec=spec,
            mutually_exclusive=_merge(AUTH_MUTUALLY_EXCLUSIVE, mutually_exclusive),
            required_together=_merge(AUTH_REQUIRED_TOGETHER, required_together),
            required_by=merged_required_by,
            **kwargs
        )
        for option in SECRET_OPTIONS:
            value = self.params.get(option)
            if value:
                self.no_log_values.add(value)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"), exception=str(REQUESTS_IMPORT_ERROR))
        if not HAS_MSAL and self._auth_method_or_none() != "access_token":
            self.fail_json(msg=missing_required_lib("msal and msal-extensions"), exception=str(MSAL_IMPORT_ERROR))
        self._endpoints = None
        self._http = None
        self._tokens = None
        self.scc_base_uri = None

    def _auth_method_or_none(self):
        """The sign-in method the options select, or None when they are contradictory (reported later)."""
        try:
            return select_auth_method(self.params)
        except ExoError:
            return None

    # Lazily built pieces: a module that fails validation never touches the network.
    @property
    def endpoints(self):
        if self._endpoints is None:
            self._endpoints = resolve_endpoints(self.params, self.warn)
        return self._endpoints

    @property
    def secrets(self):
        return [self.params.get(option) for option in SECRET_OPTIONS if self.params.get(option)]

    @property
    def http(self):
        if self._http is None:
            self._http = HttpClient(
                validate_certs=self.params.get("validate_certs", True),
                ca_path=self.params.get("ca_path"),
                proxy=self.params.get("proxy"),
                timeout=self.params.get("timeout") or 300,
                secrets=self.secrets,
                warn=self.warn,
            )
        return self._http

    @property
    def tokens(self):
        if self._tokens is None:
            self._tokens = TokenProvider(self.params, self.endpoints, self.http, self.warn)
        return self._tokens

    def resource_for(self, service="exchange"):
        if service == "security_compliance":
            return self.endpoints.scc_resource
        if service == "graph":
            return self.endpoints.graph_resource
        return self.endpoints.exchange_resource

    def identity(self, service="exchange"):
        """token_identity() of the token for the service (acquiring it if needed)."""
        return token_identity(self.tokens.get_token(self.resource_for(service)).claims)

    def tenant_segment(self, identity=None):
        """The {tenant} of /adminapi/beta/{tenant}/: the customer for partner access, else the organization."""
        if self.params.get("delegated_organization"):
            return self.params["delegated_organization"]
        if self.params.get("organization"):
            return self.params["organization"]
        return (identity or {}).get("tid")

    def anchor_mailbox(self, identity):
        """X-AnchorMailbox (reference §4): the admin's UPN when delegated, the organization mailbox app-only."""
        upn = identity.get("upn")
        if upn and not identity.get("app_only"):
            return "UPN:%s" % upn
        org = self.params.get("delegated_organization") or self.params.get("organization") or identity.get("tid")
        if org and _GUID_RE.match(org):
            return "APP:%s@%s" % (SYSTEM_MAILBOX, org)
        return "UPN:%s@%s" % (SYSTEM_MAILBOX, org)

    def exo_client(self, service="exchange"):
        """ExoClient for Exchange Online, or for Security & Compliance on its discovered regional host."""
        from ansible_collections.m365ops.exchange_online.plugins.module_utils._exo import ExoClient

        resource = self.resource_for(service)
        identity = self.identity(service)
        auth = BearerAuth(self.tokens, resource)
        tenant = self.tenant_segment(identity)
        anchor = self.anchor_mailbox(identity)
        if service != "security_compliance":
            return ExoClient(self.http, auth, self.endpoints.connection_uri, tenant, anchor, warn=self.warn)
        # Connect-IPPSSession: the generic host redirects to the tenant's region (reference §10).
        generic = ExoClient(self.http, auth, self.endpoints.scc_uri, tenant, anchor, warn=self.warn)
        regional = generic.discover_scc_base(self.endpoints.scc_uri)
        self.scc_base_uri = regional or self.endpoints.scc_uri
        return ExoClient(self.http, auth, self.scc_base_uri, tenant, anchor, warn=self.warn)

    def graph_client(self):
        from ansible_collections.m365ops.exchange_online.plugins.module_utils._graph import GraphClient

        auth = BearerAuth(self.tokens, self.endpoints.graph_resource)
        return GraphClient(self.http, auth, self.endpoints.graph_uri)

    def compile_query(self, option="query"):
        """The compiled JMESPath expression of the option, checked before any request, or None."""
        query = self.params.get(option)
        if query is None:
            return None
        if not HAS_JMESPATH:
            self.fail_json(msg=missing_required_lib("jmespath"), exception=JMESPATH_IMPORT_ERROR)
        try:
            return jmespath.compile(query)
        except jmespath.exceptions.JMESPathError as exc:
            self.fail_json(msg="%s is not a valid JMESPath expression: %s" % (option, str(exc).replace("\n", " ")))

    def redact(self, text):
        secrets = list(self.secrets)
        if self._http is not None:
            secrets.extend(self._http.secrets)
        return redact(text, secrets)

    def fail_from_exception(self, exc, msg=None, **kwargs):
        """The one error path: ExoError -> its message and fields; anything else -> short message + traceback."""
        if isinstance(exc, ExoError):
            message = exc.message if not msg else "%s: %s" % (msg, exc.message)
            result = exc.to_result()
            result.update(kwargs)
            self.fail_json(msg=self.redact(message), **result)
        message = "%s: %s: %s" % (msg or "Unexpected error", type(exc).__name__, exc)
        self.fail_json(msg=self.redact(message), exception=self.redact(traceback.format_exc()), **kwargs)
