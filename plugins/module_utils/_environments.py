# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""ExchangeEnvironmentName -> endpoints (plain data) and the URI overrides.

Values: ExchangeOnlineManagement 3.4.0 RestApiClient.dll strings and the Connect-ExchangeOnline /
Connect-IPPSSession docs; Graph hosts per cloud from the Maester docs (reference
exchange-online-rest.md §13; scopes §12; Security & Compliance §10).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoConfigError

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover
    from urlparse import urlsplit  # type: ignore

DEFAULT_ENVIRONMENT = "O365Default"

# exchange_resource is the token audience for Exchange Online REST (scope "<resource>/.default").
# For DoD and China the audience is not confirmed by any source (reference §19.2); the REST base
# host is used, as the module does for the worldwide cloud.
ENVIRONMENTS = {
    "O365Default": {
        "connection_uri": "https://outlook.office365.com",
        "authority_host": "https://login.microsoftonline.com",
        "exchange_resource": "https://outlook.office365.com",
        "scc_uri": "https://ps.compliance.protection.outlook.com",
        "scc_resource": "https://ps.compliance.protection.outlook.com",
        "graph_uri": "https://graph.microsoft.com",
        "retired": None,
    },
    "O365USGovGCCHigh": {
        "connection_uri": "https://outlook.office365.us",
        "authority_host": "https://login.microsoftonline.us",
        "exchange_resource": "https://outlook.office365.us",
        "scc_uri": "https://ps.compliance.protection.office365.us",
        "scc_resource": "https://ps.compliance.protection.office365.us",
        "graph_uri": "https://graph.microsoft.us",
        "retired": None,
    },
    "O365USGovDoD": {
        "connection_uri": "https://outlook-dod.office365.us",
        "authority_host": "https://login.microsoftonline.us",
        "exchange_resource": "https://outlook-dod.office365.us",
        "scc_uri": "https://l5.ps.compliance.protection.office365.us",
        "scc_resource": "https://l5.ps.compliance.protection.office365.us",
        "graph_uri": "https://dod-graph.microsoft.us",
        "retired": None,
    },
    "O365China": {
        "connection_uri": "https://partner.outlook.cn",
        "authority_host": "https://login.chinacloudapi.cn",
        "exchange_resource": "https://partner.outlook.cn",
        "scc_uri": "https://ps.compliance.protection.partner.outlook.cn",
        "scc_resource": "https://ps.compliance.protection.partner.outlook.cn",
        "graph_uri": "https://microsoftgraph.chinacloudapi.cn",
        "retired": None,
    },
    "O365GermanyCloud": {
        # Microsoft Cloud Deutschland closed on 2021-10-29; kept so old playbooks get a clear warning.
        "connection_uri": "https://outlook.office.de",
        "authority_host": "https://login.microsoftonline.de",
        "exchange_resource": "https://outlook.office.de",
        "scc_uri": "https://ps.compliance.protection.outlook.de",
        "scc_resource": "https://ps.compliance.protection.outlook.de",
        "graph_uri": "https://graph.microsoft.de",
        "retired": "2021-10-29",
    },
}

Endpoints = namedtuple("Endpoints", [
    "environment_name", "connection_uri", "authority_host", "authority", "exchange_resource",
    "scc_uri", "scc_resource", "graph_uri", "graph_resource",
    # Extra: the tenant segment of the authority ("organizations" when no tenant is known).
    "authority_tenant",
])

_GENERIC_TENANTS = ("common", "organizations")
_LEGACY_PATH_RE = re.compile(r"^/+(powershell-liveid|powershell)/*$", re.IGNORECASE)


def _origin(value, option):
    """scheme://host[:port] of an override, or a config error naming the option."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise ExoConfigError(
            "%s must be an absolute https:// URL such as https://outlook.office365.com, got %r." % (option, value),
            details={"option": option},
        )
    return parts, "%s://%s" % (parts.scheme, parts.netloc)


def normalize_connection_uri(value, option="connection_uri"):
    """REST base without path; a guide's .../PowerShell-LiveID[?...] value is accepted and the path dropped."""
    parts, origin = _origin(value, option)
    path = parts.path or ""
    if path.strip("/") and not _LEGACY_PATH_RE.match(path):
        raise ExoConfigError(
            "%s must be the service's base URL without a path (for example https://outlook.office365.com), got %r. "
            "A remote PowerShell URL ending in /PowerShell-LiveID is also accepted." % (option, value),
            details={"option": option},
        )
    return origin


def normalize_graph_uri(value):
    """Graph root; a trailing /v1.0 or /beta is dropped because the collection appends /v1.0/..."""
    parts, origin = _origin(value, "graph_uri")
    path = (parts.path or "").strip("/")
    if path and path.lower() not in ("v1.0", "beta"):
        raise ExoConfigError(
            "graph_uri must be the Microsoft Graph root such as https://graph.microsoft.com, got %r." % value,
            details={"option": "graph_uri"},
        )
    return origin


def authority_tenant(params):
    """The tenant a token is requested from: the customer tenant for partner access, else the organization."""
    return params.get("delegated_organization") or params.get("organization") or "organizations"


def split_authority(value, tenant, force_tenant=False):
    """(host, tenant segment) of azure_ad_authorization_endpoint_uri; common/organizations -> tenant.

    With partner access (force_tenant) the token must come from the customer tenant, whatever
    tenant the override names.
    """
    parts, origin = _origin(value, "azure_ad_authorization_endpoint_uri")
    segments = [s for s in (parts.path or "").split("/") if s]
    segment = segments[0] if segments else ""
    if force_tenant or not segment or segment.lower() in _GENERIC_TENANTS:
        segment = tenant
    return origin, segment


def resolve_endpoints(params, warn=None):
    """Endpoints for the options: the environment's table entry with the overrides applied."""
    name = params.get("exchange_environment_name") or DEFAULT_ENVIRONMENT
    if name not in ENVIRONMENTS:
        raise ExoConfigError(
            "exchange_environment_name %r is not known; use one of %s." % (name, ", ".join(sorted(ENVIRONMENTS))),
            details={"option": "exchange_environment_name"},
        )
    env = ENVIRONMENTS[name]
    if env["retired"] and warn is not None:
        warn(
            "exchange_environment_name=%s: Microsoft Cloud Deutschland was retired on %s and its endpoints no longer "
            "answer; tenants were moved to the worldwide cloud (O365Default). The value is accepted for old "
            "playbooks and for the connection_uri / azure_ad_authorization_endpoint_uri overrides." % (name, env["retired"])
        )

    connection_uri = env["connection_uri"]
    exchange_resource = env["exchange_resource"]
    scc_uri = env["scc_uri"]
    scc_resource = env["scc_resource"]
    override = params.get("connection_uri")
    if override:
        base = normalize_connection_uri(override)
        # Like Connect-IPPSSession -ConnectionUri, the override names the Security & Compliance
        # endpoint when that is the service asked for. The overridden host is also the audience.
        if params.get("service") == "security_compliance":
            scc_uri = scc_resource = base
        else:
            connection_uri = exchange_resource = base

    tenant = authority_tenant(params)
    authority_host = env["authority_host"]
    if params.get("azure_ad_authorization_endpoint_uri"):
        authority_host, tenant = split_authority(params["azure_ad_authorization_endpoint_uri"], tenant,
                                                 force_tenant=bool(params.get("delegated_organization")))

    graph_uri = env["graph_uri"]
    if params.get("graph_uri"):
        graph_uri = normalize_graph_uri(params["graph_uri"])

    return Endpoints(
        environment_name=name,
        connection_uri=connection_uri,
        authority_host=authority_host,
        authority="%s/%s" % (authority_host, tenant),
        exchange_resource=exchange_resource,
        scc_uri=scc_uri,
        scc_resource=scc_resource,
        graph_uri=graph_uri,
        graph_resource=graph_uri,
        authority_tenant=tenant,
    )
