# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The shared connection options of every cloud module (ExoModule's argument spec)."""

    DOCUMENTATION = r"""
options:
  organization:
    description:
      - The tenant, as the primary C(.onmicrosoft.com) domain (for example V(contoso.onmicrosoft.com)) or the tenant GUID,
        like C(Connect-ExchangeOnline -Organization).
      - Required for app-only sign-in (O(auth_method=client_secret), O(auth_method=certificate),
        O(auth_method=managed_identity)); for delegated sign-in the tenant is read from the token when omitted.
      - The E(EXO_ORGANIZATION) environment variable is used when this is not set.
    type: str
  auth_method:
    description:
      - How to sign in to Entra ID.
      - V(auto) infers the method from the credentials given and fails, naming them, when more than one method fits.
        O(user_principal_name) alone means V(device_code).
      - V(client_secret) and V(certificate) are app-only sign-ins of the app O(app_id) (the app needs the
        C(Exchange.ManageAsApp) permission and an Exchange directory role).
      - V(password) signs in O(user_principal_name) with O(password) (no MFA possible).
      - V(device_code) shows a URL and a code to the person running the play (terminal and AWX job output) and waits
        for the sign-in; the refresh token is cached in O(token_cache_path), so later runs are silent. Only
        M(m365ops.exchange_online.exo_connect) starts a device code sign-in; other modules use the cached one.
      - V(managed_identity) uses the Azure managed identity of the host the task runs on.
      - V(access_token) uses O(access_token) as given.
      - The E(EXO_AUTH_METHOD) environment variable is used when this is not set.
    type: str
    default: auto
    choices: [auto, client_secret, certificate, password, device_code, managed_identity, access_token]
  app_id:
    description:
      - The application (client) id of the app registration.
      - Delegated sign-in (V(password), V(device_code)) defaults to the public client id of the Exchange Online
        PowerShell module, V(fb78d390-0c51-40cd-8e17-fdbfab77341b).
      - The E(EXO_APP_ID) environment variable is used when this is not set.
    type: str
  client_secret:
    description:
      - A client secret (its Value) of O(app_id).
      - The E(EXO_CLIENT_SECRET) environment variable is used when this is not set.
    type: str
  certificate_path:
    description:
      - A PEM file holding the private key and the certificate (the key unencrypted, or encrypted with
        O(certificate_password)), or a PFX/PKCS#12 file with O(certificate_password).
      - The thumbprint is computed from the certificate; it is never asked for.
      - Mutually exclusive with O(certificate).
      - The E(EXO_CERTIFICATE_PATH) environment variable is used when this is not set.
    type: path
  certificate:
    description:
      - The private key and the certificate as PEM content (for example from a vault or an AWX credential).
      - Mutually exclusive with O(certificate_path).
      - The E(EXO_CERTIFICATE) environment variable is used when this is not set.
    type: str
  certificate_password:
    description:
      - The password of the PFX file or of the encrypted PEM private key.
      - The E(EXO_CERTIFICATE_PASSWORD) environment variable is used when this is not set.
    type: str
  user_principal_name:
    description:
      - The admin account for delegated sign-in, for example V(admin@contoso.onmicrosoft.com).
      - The signed-in account must be this one; a token for another account (single sign-on, cached sign-in) is refused.
      - The E(EXO_USER_PRINCIPAL_NAME) environment variable is used when this is not set.
    type: str
  password:
    description:
      - The password of O(user_principal_name) for O(auth_method=password). Accounts that must use MFA cannot sign in
        this way; use V(device_code) or an app.
      - The E(EXO_PASSWORD) environment variable is used when this is not set.
    type: str
  access_token:
    description:
      - An access token obtained elsewhere, for the Exchange Online resource (or Microsoft Graph for Graph modules).
      - Its expiry is read from it; an expired token is refused. It cannot be refreshed.
      - The E(EXO_ACCESS_TOKEN) environment variable is used when this is not set.
    type: str
  managed_identity_client_id:
    description:
      - The client id of a user-assigned managed identity; the system-assigned identity is used when omitted.
      - The E(EXO_MANAGED_IDENTITY_CLIENT_ID) environment variable is used when this is not set.
    type: str
  exchange_environment_name:
    description:
      - The Microsoft cloud, as C(Connect-ExchangeOnline -ExchangeEnvironmentName).
      - V(O365Default) is the worldwide cloud and GCC; V(O365USGovGCCHigh), V(O365USGovDoD) and V(O365China) are the
        sovereign clouds.
      - V(O365GermanyCloud) (Microsoft Cloud Deutschland) was retired on 2021-10-29; it is accepted with a warning.
      - The E(EXO_ENVIRONMENT) environment variable is used when this is not set.
    type: str
    default: O365Default
    choices: [O365China, O365Default, O365GermanyCloud, O365USGovDoD, O365USGovGCCHigh]
  connection_uri:
    description:
      - Overrides the Exchange Online REST base URL of the environment, for example V(https://outlook.office365.com).
      - A remote PowerShell URL copied from the guides (ending in C(/PowerShell-LiveID)) is accepted; the path is dropped.
      - For M(m365ops.exchange_online.exo_connect) with O(m365ops.exchange_online.exo_connect#module:service=security_compliance)
        this is the Security & Compliance endpoint, as C(Connect-IPPSSession -ConnectionUri).
      - The overridden host is also the token audience.
      - The E(EXO_CONNECTION_URI) environment variable is used when this is not set.
    type: str
  azure_ad_authorization_endpoint_uri:
    description:
      - Overrides the Entra ID authority, for example V(https://login.microsoftonline.com/organizations).
      - A trailing C(common) or C(organizations), or no tenant at all, is replaced by O(organization)
        (or O(delegated_organization)).
      - The E(EXO_AUTHORITY_URI) environment variable is used when this is not set.
    type: str
  graph_uri:
    description:
      - Overrides the Microsoft Graph root of the environment, for example V(https://graph.microsoft.com).
      - The E(EXO_GRAPH_URI) environment variable is used when this is not set.
    type: str
  delegated_organization:
    description:
      - Partner access (GDAP/CSP) to a customer tenant, as C(-DelegatedOrganization); tokens are requested from that
        tenant and cmdlets run there.
      - The E(EXO_DELEGATED_ORGANIZATION) environment variable is used when this is not set.
    type: str
  proxy:
    description:
      - An HTTP(S) proxy URL for every request, for example V(http://proxy.example.com:3128).
      - The E(HTTPS_PROXY) environment variable is used when this is not set. Other proxy and CA bundle variables of
        the environment (E(REQUESTS_CA_BUNDLE)) are ignored so the options always win.
    type: str
  validate_certs:
    description:
      - Verify TLS certificates. Turn off only for testing.
      - The E(EXO_VALIDATE_CERTS) environment variable is used when this is not set.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM bundle of the CA certificates to trust instead of the default ones (for example a TLS-inspecting proxy's CA).
      - The E(EXO_CA_PATH) environment variable is used when this is not set.
    type: path
  token_cache_path:
    description:
      - The file tokens persist in between tasks, so a play signs in once. It is created with mode C(0600) in a
        C(0700) directory and locked, so parallel forks share it without duplicate sign-ins.
      - Defaults to C(~/.ansible/m365ops_exchange_online/token_cache.json) on the host the task runs on.
      - V('') disables the cache (every task signs in; V(device_code) then cannot work across tasks).
      - The E(EXO_TOKEN_CACHE_PATH) environment variable is used when this is not set.
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request.
      - The E(EXO_TIMEOUT) environment variable is used when this is not set.
    type: int
    default: 300
notes:
  - Environment variables are read on the host the task runs on (usually C(localhost) or the execution environment),
    not on the controller, when the task is delegated elsewhere.
  - Throttled (HTTP 429, honouring C(Retry-After)) and transient (HTTP 500, 502, 503, 504, connection errors) failures
    are retried with capped exponential backoff; a token the service rejects is renewed once.
  - Secrets (O(client_secret), O(password), O(certificate), O(certificate_password), O(access_token)) and tokens never
    appear in results, warnings or errors.
requirements:
  - python >= 3.8
  - msal >= 1.24.0
  - msal-extensions >= 1.1.0
  - requests >= 2.31.0
  - cryptography >= 41.0.0 (certificate sign-in)
"""
