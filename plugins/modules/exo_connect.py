#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exo_connect
short_description: Sign in to Exchange Online or Security & Compliance and verify the connection
version_added: 0.1.0
description:
  - Acquires a token with the chosen sign-in method, verifies it with a cheap read (C(Get-OrganizationConfig) for
    Exchange Online, C(Get-Label) for Security & Compliance) and returns the fields of C(Get-ConnectionInformation).
  - The Ansible counterpart of C(Connect-ExchangeOnline) and C(Connect-IPPSSession). REST has no server session to keep
    open; the token is cached in O(token_cache_path) so the tasks that follow sign in silently.
  - With O(auth_method=device_code) the URL and the code are shown to the person running the play (terminal and AWX
    job output) while the task waits for the sign-in; later runs use the cached refresh token and are silent. The
    sign-in is shown when the task runs on the controller (a play on C(localhost), or C(delegate_to) C(localhost)).
  - Never reports a change.
author:
  - m365ops.exchange_online contributors (@m365ops)
extends_documentation_fragment:
  - m365ops.exchange_online.auth
  - m365ops.exchange_online.attributes.read_only
  - m365ops.exchange_online.attributes.action_group
options:
  service:
    description:
      - V(exchange) connects to Exchange Online, as C(Connect-ExchangeOnline).
      - V(security_compliance) connects to Security & Compliance, as C(Connect-IPPSSession), with its own token
        audience; the regional host is discovered from the redirect of the generic endpoint.
    type: str
    default: exchange
    choices: [exchange, security_compliance]
seealso:
  - module: m365ops.exchange_online.exo_command
  - module: m365ops.exchange_online.exo_mailbox_facts
"""

EXAMPLES = r"""
- name: Connect as an app with a certificate (app-only)
  m365ops.exchange_online.exo_connect:
    organization: contoso.onmicrosoft.com
    app_id: 00000000-1111-2222-3333-444444444444
    certificate_path: /etc/exo/app.pfx
    certificate_password: "{{ vault_pfx_password }}"
  register: exo

- name: Show who is connected
  ansible.builtin.debug:
    msg: "{{ exo.connection.organization_name }} as {{ exo.connection.app_id }} until {{ exo.connection.token_expiry_time_utc }}"

- name: Sign in once per play for every cloud module
  hosts: localhost
  module_defaults:
    group/m365ops.exchange_online.exo:
      organization: contoso.onmicrosoft.com
      app_id: "{{ exo_app_id }}"
      client_secret: "{{ vault_exo_secret }}"
  tasks:
    - name: Verify the connection before the changes
      m365ops.exchange_online.exo_connect:

- name: An admin who must use MFA signs in by device code (URL and code appear in the output)
  m365ops.exchange_online.exo_connect:
    user_principal_name: admin@contoso.onmicrosoft.com
    auth_method: device_code

- name: Security & Compliance for a customer tenant (partner access)
  m365ops.exchange_online.exo_connect:
    service: security_compliance
    organization: partner.onmicrosoft.com
    delegated_organization: customer.onmicrosoft.com
    app_id: "{{ exo_app_id }}"
    certificate_path: /etc/exo/app.pem

- name: GCC High, with a managed identity of the Azure VM running the play
  m365ops.exchange_online.exo_connect:
    exchange_environment_name: O365USGovGCCHigh
    auth_method: managed_identity
    organization: agency.onmicrosoft.us
"""

RETURN = r"""
connection:
  description: The connection, with the fields of C(Get-ConnectionInformation) in snake case.
  returned: success
  type: dict
  contains:
    connection_id:
      description: A new GUID for this connection.
      type: str
      sample: 8a2f2c4e-0c5b-4f7e-9d61-1f0f2d3c4b5a
    state:
      description: V(Connected) once the verification read succeeded.
      type: str
      sample: Connected
    id:
      description: Connection number, as C(Get-ConnectionInformation).
      type: int
      sample: 1
    name:
      description: V(ExchangeOnline_1) or V(ExchangeOnlineProtection_1) (Security & Compliance).
      type: str
      sample: ExchangeOnline_1
    user_principal_name:
      description: The signed-in user for delegated sign-in; V(null) for app-only sign-in.
      type: str
      sample: admin@contoso.onmicrosoft.com
    app_id:
      description: The application id the token was issued to.
      type: str
      sample: fb78d390-0c51-40cd-8e17-fdbfab77341b
    organization:
      description: O(organization) as given, or the tenant GUID when only that is known.
      type: str
      sample: contoso.onmicrosoft.com
    tenant_id:
      description: The tenant GUID of the token.
      type: str
      sample: 6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11
    delegated_organization:
      description: O(delegated_organization), or V(null).
      type: str
      sample: fabrikam.onmicrosoft.com
    connection_uri:
      description: The REST base in use (for Security & Compliance the discovered regional host).
      type: str
      sample: https://outlook.office365.com
    azure_ad_authorization_endpoint_uri:
      description: The Entra ID authority the token came from.
      type: str
      sample: https://login.microsoftonline.com/contoso.onmicrosoft.com
    exchange_environment_name:
      description: The cloud.
      type: str
      sample: O365Default
    token_expiry_time_utc:
      description: When the access token expires, ISO 8601 UTC. It is renewed automatically before then.
      type: str
      sample: "2026-05-04T10:21:07Z"
    token_status:
      description: V(Active).
      type: str
      sample: Active
    certificate_authentication:
      description: Whether the sign-in used a certificate.
      type: bool
      sample: false
    is_eop_session:
      description: V(true) for Security & Compliance connections.
      type: bool
      sample: false
    auth_method:
      description: The sign-in method used (the inferred one for O(auth_method=auto)).
      type: str
      sample: certificate
    certificate_thumbprint:
      description: SHA-1 thumbprint of the certificate used, as the Entra portal shows it; V(null) without certificate.
      type: str
      sample: 3F2A5C1E9B7D4A6F8E0C2B4D6F8A0C2E4B6D8F0A
    page_size:
      description: Page size used for cmdlet results.
      type: int
      sample: 1000
    organization_name:
      description: The organization's display name from C(Get-OrganizationConfig); V(null) for Security & Compliance.
      type: str
      sample: Contoso
"""

import re
import uuid

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoAuthError, ExoError
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import ExoModule
from ansible_collections.m365ops.exchange_online.plugins.module_utils._auth import iso_utc

# The cheap read that proves a session works (reference exchange-online-rest.md §16).
VERIFY_CMDLET = {"exchange": "Get-OrganizationConfig", "security_compliance": "Get-Label"}


def service_text(message):
    """The service's own words from an ExoClient 401/403 message (which adds its own advice around them)."""
    match = re.search(r"\(HTTP \d{3}\): (.+?)\.?(?: App-only sign-in needs| Assign an Exchange directory role|$)", message)
    return match.group(1).rstrip(".") if match else message


def explain_service_refusal(module, exc, service):
    """Exchange's 401/403 after a good token: missing application permission or directory role (reference §8, §12)."""
    status = getattr(exc, "status", None)
    if status not in (401, 403):
        return None
    said = service_text(exc.message)
    tokens = module.tokens
    target = "Exchange Online" if service == "exchange" else "Security & Compliance"
    if tokens.app_only:
        if status == 401:
            return ExoAuthError(
                "%s refused app %s (HTTP 401): the app has no Exchange.ManageAsApp application permission with admin "
                "consent. Add API permission Office 365 Exchange Online > Exchange.ManageAsApp to the app registration "
                "and grant admin consent. The service said: %s." % (target, tokens.app_id, said),
                status=status, code=exc.code or "missing_exchange_manage_as_app", details=exc.details)
        return ExoAuthError(
            "%s refused app %s (HTTP 403): the app has no Exchange directory role, so its session has no RBAC rights. "
            "Assign a role such as Exchange Administrator (or Compliance Administrator for Security & Compliance) to "
            "the app's service principal in Entra ID. The service said: %s." % (target, tokens.app_id, said),
            status=status, code=exc.code or "missing_directory_role", details=exc.details)
    if status == 401 and tokens.method == "access_token":
        return ExoAuthError(
            "%s refused the given access_token (HTTP 401): it is expired, revoked or for another resource or tenant. "
            "The service said: %s." % (target, said), status=status, code=exc.code, details=exc.details)
    if status == 401 and module.params.get("delegated_organization"):
        return ExoAuthError(
            "%s refused access to %s (HTTP 401): the signed-in account has no partner (delegated admin) access to that "
            "tenant. The service said: %s." % (target, module.params["delegated_organization"], said),
            status=status, code=exc.code, details=exc.details)
    return ExoAuthError(
        "%s refused the signed-in account (HTTP %d): it needs an Exchange admin role (for example Exchange Administrator). "
        "The service said: %s." % (target, status, said), status=status, code=exc.code, details=exc.details)


def main():
    module = ExoModule(
        argument_spec=dict(
            service=dict(type="str", default="exchange", choices=["exchange", "security_compliance"]),
        ),
        supports_check_mode=True,
    )
    service = module.params["service"]
    try:
        endpoints = module.endpoints
        tokens = module.tokens
        client = module.exo_client(service)
        # Only the first object is needed; the generator fetches no further page.
        first = next(iter(client.invoke(VERIFY_CMDLET[service])), None)
        token = tokens.get_token(module.resource_for(service))
    except ExoError as exc:
        explained = explain_service_refusal(module, exc, service) if module._tokens is not None else None
        module.fail_from_exception(explained or exc)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_from_exception(exc, msg="exo_connect failed")

    identity = module.identity(service)
    organization_name = None
    if service == "exchange" and first:
        organization_name = first.get("DisplayName") or first.get("Name")
    certificate = tokens.certificate
    connection = dict(
        connection_id=str(uuid.uuid4()),
        state="Connected",
        id=1,
        name="ExchangeOnline_1" if service == "exchange" else "ExchangeOnlineProtection_1",
        user_principal_name=None if identity.get("app_only") else identity.get("upn"),
        app_id=identity.get("appid") or tokens.app_id,
        organization=module.params.get("organization") or identity.get("tid"),
        tenant_id=identity.get("tid"),
        delegated_organization=module.params.get("delegated_organization"),
        connection_uri=endpoints.connection_uri if service == "exchange" else (module.scc_base_uri or endpoints.scc_uri),
        azure_ad_authorization_endpoint_uri=endpoints.authority,
        exchange_environment_name=endpoints.environment_name,
        token_expiry_time_utc=iso_utc(token.expires_on),
        token_status="Active",
        certificate_authentication=tokens.method == "certificate",
        certificate_thumbprint=certificate.thumbprint if certificate else None,
        is_eop_session=service == "security_compliance",
        auth_method=tokens.method,
        page_size=1000,
        organization_name=organization_name,
    )
    module.exit_json(changed=False, connection=connection)


if __name__ == "__main__":
    main()
