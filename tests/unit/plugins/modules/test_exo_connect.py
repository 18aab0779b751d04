# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""exo_connect: the connection result, check mode, and the messages for Exchange's refusals (fake client)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _exo
from ansible_collections.m365ops.exchange_online.plugins.module_utils._auth import AccessToken, TokenProvider
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoAuthError, ExoHttpError
from ansible_collections.m365ops.exchange_online.plugins.modules import exo_connect
from ansible_collections.m365ops.exchange_online.tests.unit.plugins.modules._helpers import patch_exit, run_module

APP = "00000000-1111-2222-3333-444444444444"
TID = "6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11"


def jwt(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return "%s.%s.c2ln" % (part({"alg": "RS256"}), part(claims))


APP_CLAIMS = {"appid": APP, "tid": TID, "roles": ["Exchange.ManageAsApp"], "idtyp": "app"}
USER_CLAIMS = {"appid": "fb78d390-0c51-40cd-8e17-fdbfab77341b", "tid": TID, "upn": "admin@contoso.onmicrosoft.com",
               "scp": "Exchange.Manage"}


class FakeClient:
    outcome = None
    calls = []

    def __init__(self, http, auth, base_uri, tenant, anchor_mailbox, warn=None, page_size=1000):
        self.base_uri = base_uri
        FakeClient.calls.append({"base_uri": base_uri, "tenant": tenant, "anchor": anchor_mailbox})

    def invoke(self, cmdlet, parameters=None, result_size=None, select=None):
        FakeClient.calls.append({"cmdlet": cmdlet})
        outcome = FakeClient.outcome
        if isinstance(outcome, Exception):
            raise outcome  # pylint: disable=raising-bad-type
        yield from outcome or []

    def discover_scc_base(self, scc_uri):
        return "https://eur02b.ps.compliance.protection.outlook.com"


@pytest.fixture
def run(monkeypatch):
    patch_exit(monkeypatch)
    monkeypatch.setattr(_exo, "ExoClient", FakeClient)

    def _run(outcome, claims=None, check_mode=False, **args):
        FakeClient.outcome = outcome
        FakeClient.calls = []
        if claims is not None:
            exp = int(time.time()) + 3600
            monkeypatch.setattr(TokenProvider, "_acquire",
                                lambda self, resource, force=False: AccessToken(jwt(dict(claims, exp=exp)), exp, dict(claims, exp=exp)))
        args = dict(args, _ansible_check_mode=check_mode, token_cache_path="")
        return run_module(monkeypatch, exo_connect.main, args)

    return _run


APP_ARGS = dict(organization="contoso.onmicrosoft.com", app_id=APP, client_secret="the-client-secret-value")


@pytest.mark.parametrize("check_mode", [False, True])
def test_app_only_connection(run, check_mode):
    result = run([{"Name": "contoso.onmicrosoft.com", "DisplayName": "Contoso"}], claims=APP_CLAIMS,
                 check_mode=check_mode, **APP_ARGS)
    assert not result["_failed"] and result["changed"] is False
    connection = result["connection"]
    assert connection["organization_name"] == "Contoso"
    assert connection["organization"] == "contoso.onmicrosoft.com" and connection["tenant_id"] == TID
    assert connection["app_id"] == APP and connection["user_principal_name"] is None
    assert connection["auth_method"] == "client_secret" and connection["certificate_authentication"] is False
    assert connection["state"] == "Connected" and connection["token_status"] == "Active"
    assert connection["connection_uri"] == "https://outlook.office365.com"
    assert connection["azure_ad_authorization_endpoint_uri"] == "https://login.microsoftonline.com/contoso.onmicrosoft.com"
    assert connection["token_expiry_time_utc"].endswith("Z")
    assert connection["is_eop_session"] is False and connection["name"] == "ExchangeOnline_1"
    assert FakeClient.calls[1] == {"cmdlet": "Get-OrganizationConfig"}
    assert "the-client-secret-value" not in json.dumps(result)


def test_delegated_connection_without_organization(run):
    result = run([{"Name": "contoso.onmicrosoft.com"}], claims=USER_CLAIMS,
                 user_principal_name="admin@contoso.onmicrosoft.com", password="pw-secret")
    connection = result["connection"]
    assert connection["user_principal_name"] == "admin@contoso.onmicrosoft.com"
    assert connection["organization"] == TID
    assert FakeClient.calls[0]["tenant"] == TID and FakeClient.calls[0]["anchor"] == "UPN:admin@contoso.onmicrosoft.com"


def test_security_compliance(run):
    result = run([{"Name": "Public"}], claims=APP_CLAIMS, service="security_compliance", **APP_ARGS)
    connection = result["connection"]
    assert connection["connection_uri"] == "https://eur02b.ps.compliance.protection.outlook.com"
    assert connection["is_eop_session"] is True and connection["name"] == "ExchangeOnlineProtection_1"
    assert connection["organization_name"] is None


def test_access_token(run):
    exp = int(time.time()) + 600
    result = run([{"DisplayName": "Contoso"}], access_token=jwt(dict(APP_CLAIMS, exp=exp)), organization="contoso.onmicrosoft.com")
    assert result["connection"]["auth_method"] == "access_token"
    assert result["connection"]["token_expiry_time_utc"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))


def test_app_without_manage_as_app(run):
    result = run(ExoAuthError("refused", status=401), claims=APP_CLAIMS, **APP_ARGS)
    assert result["_failed"] and result["status"] == 401
    assert "no Exchange.ManageAsApp application permission" in result["msg"]


def test_app_without_directory_role(run):
    result = run(ExoAuthError("role not supported", status=403), claims=APP_CLAIMS, **APP_ARGS)
    assert result["_failed"] and "has no Exchange directory role" in result["msg"]


def test_user_without_role(run):
    result = run(ExoAuthError("denied", status=403), claims=USER_CLAIMS,
                 user_principal_name="admin@contoso.onmicrosoft.com", password="pw-secret")
    assert "needs an Exchange admin role" in result["msg"]


def test_transport_errors_pass_through(run):
    result = run(ExoHttpError("POST https://x failed with HTTP 503 after 6 attempts", status=503), claims=APP_CLAIMS, **APP_ARGS)
    assert result["_failed"] and result["msg"].startswith("POST https://x failed")


def test_ambiguous_credentials(run):
    result = run([], app_id=APP, organization="o", client_secret="s-secret", certificate_path="/tmp/x.pem")
    assert result["_failed"] and "auth_method=auto cannot choose" in result["msg"]


def test_service_text_keeps_only_the_service_words():
    message = ("Exchange Online denied Get-OrganizationConfig (HTTP 403): The role isn't supported. Assign an Exchange "
               "directory role (for example Exchange Administrator) to the app's service principal or the signed-in user.")
    assert exo_connect.service_text(message) == "The role isn't supported"
    assert exo_connect.service_text("plain text") == "plain text"
