# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_environments.py: the ExchangeEnvironmentName table and the URI overrides."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.exchange_online.plugins.module_utils._environments import (
    ENVIRONMENTS,
    resolve_endpoints,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoConfigError


@pytest.mark.parametrize("name, rest, authority, scc, graph", [
    ("O365Default", "https://outlook.office365.com", "https://login.microsoftonline.com",
     "https://ps.compliance.protection.outlook.com", "https://graph.microsoft.com"),
    ("O365USGovGCCHigh", "https://outlook.office365.us", "https://login.microsoftonline.us",
     "https://ps.compliance.protection.office365.us", "https://graph.microsoft.us"),
    ("O365USGovDoD", "https://outlook-dod.office365.us", "https://login.microsoftonline.us",
     "https://l5.ps.compliance.protection.office365.us", "https://dod-graph.microsoft.us"),
    ("O365China", "https://partner.outlook.cn", "https://login.chinacloudapi.cn",
     "https://ps.compliance.protection.partner.outlook.cn", "https://microsoftgraph.chinacloudapi.cn"),
    ("O365GermanyCloud", "https://outlook.office.de", "https://login.microsoftonline.de",
     "https://ps.compliance.protection.outlook.de", "https://graph.microsoft.de"),
])
def test_table(name, rest, authority, scc, graph):
    endpoints = resolve_endpoints({"exchange_environment_name": name, "organization": "contoso.onmicrosoft.com"},
                                  warn=lambda m: None)
    assert endpoints.environment_name == name
    assert endpoints.connection_uri == rest and endpoints.exchange_resource == rest
    assert endpoints.authority_host == authority
    assert endpoints.authority == authority + "/contoso.onmicrosoft.com"
    assert endpoints.scc_uri == scc and endpoints.scc_resource == scc
    assert endpoints.graph_uri == graph and endpoints.graph_resource == graph


def test_no_gcc_name_and_five_names():
    assert sorted(ENVIRONMENTS) == ["O365China", "O365Default", "O365GermanyCloud", "O365USGovDoD", "O365USGovGCCHigh"]


def test_default_environment_and_organizations_without_tenant():
    endpoints = resolve_endpoints({}, warn=None)
    assert endpoints.environment_name == "O365Default"
    assert endpoints.authority == "https://login.microsoftonline.com/organizations"


def test_germany_warns_only_germany():
    warnings = []
    resolve_endpoints({"exchange_environment_name": "O365GermanyCloud"}, warnings.append)
    assert len(warnings) == 1 and "retired on 2021-10-29" in warnings[0]
    resolve_endpoints({"exchange_environment_name": "O365China"}, warnings.append)
    assert len(warnings) == 1


def test_unknown_environment():
    with pytest.raises(ExoConfigError) as caught:
        resolve_endpoints({"exchange_environment_name": "O365GCC"})
    assert "O365Default" in caught.value.message


@pytest.mark.parametrize("value", [
    "https://outlook.office365.com/PowerShell-LiveID",
    "https://outlook.office365.com/powershell-liveid/",
    "https://outlook.office365.com/PowerShell-LiveID?DelegatedOrg=fabrikam.onmicrosoft.com",
    "https://outlook.office365.com/",
    "https://outlook.office365.com",
])
def test_connection_uri_legacy_path_dropped(value):
    endpoints = resolve_endpoints({"connection_uri": value})
    assert endpoints.connection_uri == "https://outlook.office365.com"
    assert endpoints.exchange_resource == "https://outlook.office365.com"


def test_connection_uri_override_keeps_port_and_is_the_audience():
    endpoints = resolve_endpoints({"exchange_environment_name": "O365USGovGCCHigh", "connection_uri": "https://127.0.0.5:8443"})
    assert endpoints.connection_uri == "https://127.0.0.5:8443" and endpoints.exchange_resource == "https://127.0.0.5:8443"
    assert endpoints.authority_host == "https://login.microsoftonline.us"


@pytest.mark.parametrize("value", ["outlook.office365.com", "ftp://x", "https://outlook.office365.com/adminapi/beta"])
def test_connection_uri_bad(value):
    with pytest.raises(ExoConfigError) as caught:
        resolve_endpoints({"connection_uri": value})
    assert "connection_uri" in caught.value.message


def test_connection_uri_for_security_compliance():
    endpoints = resolve_endpoints({"service": "security_compliance",
                                   "connection_uri": "https://ps.compliance.protection.outlook.com/powershell-liveid/"})
    assert endpoints.scc_uri == "https://ps.compliance.protection.outlook.com"
    assert endpoints.connection_uri == "https://outlook.office365.com"


@pytest.mark.parametrize("value, expected", [
    ("https://login.microsoftonline.com/organizations", "https://login.microsoftonline.com/contoso.onmicrosoft.com"),
    ("https://login.microsoftonline.com/common", "https://login.microsoftonline.com/contoso.onmicrosoft.com"),
    ("https://login.example", "https://login.example/contoso.onmicrosoft.com"),
    ("https://login.example/6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11", "https://login.example/6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11"),
])
def test_authority_override(value, expected):
    endpoints = resolve_endpoints({"organization": "contoso.onmicrosoft.com", "azure_ad_authorization_endpoint_uri": value})
    assert endpoints.authority == expected


def test_delegated_organization_is_the_authority_tenant():
    params = {"organization": "contoso.onmicrosoft.com", "delegated_organization": "fabrikam.onmicrosoft.com"}
    assert resolve_endpoints(params).authority == "https://login.microsoftonline.com/fabrikam.onmicrosoft.com"
    params["azure_ad_authorization_endpoint_uri"] = "https://login.example/6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11"
    assert resolve_endpoints(params).authority == "https://login.example/fabrikam.onmicrosoft.com"


@pytest.mark.parametrize("value", ["https://graph.example", "https://graph.example/", "https://graph.example/v1.0"])
def test_graph_override(value):
    endpoints = resolve_endpoints({"graph_uri": value})
    assert endpoints.graph_uri == "https://graph.example" and endpoints.graph_resource == "https://graph.example"


def test_graph_override_bad():
    with pytest.raises(ExoConfigError):
        resolve_endpoints({"graph_uri": "https://graph.example/v1.0/identity"})
