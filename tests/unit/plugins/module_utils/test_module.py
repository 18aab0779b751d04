# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_module.py: the shared argument spec, anchors, the tenant segment, the one error path."""

from __future__ import annotations

import json
import time

import pytest

from ansible.module_utils import basic

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _exo, _module
from ansible_collections.m365ops.exchange_online.plugins.module_utils._auth import AccessToken
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoAuthError

DESIGN_OPTIONS = {
    "organization": "EXO_ORGANIZATION", "auth_method": "EXO_AUTH_METHOD", "app_id": "EXO_APP_ID",
    "client_secret": "EXO_CLIENT_SECRET", "certificate_path": "EXO_CERTIFICATE_PATH", "certificate": "EXO_CERTIFICATE",
    "certificate_password": "EXO_CERTIFICATE_PASSWORD", "user_principal_name": "EXO_USER_PRINCIPAL_NAME",
    "password": "EXO_PASSWORD", "access_token": "EXO_ACCESS_TOKEN",
    "managed_identity_client_id": "EXO_MANAGED_IDENTITY_CLIENT_ID", "exchange_environment_name": "EXO_ENVIRONMENT",
    "connection_uri": "EXO_CONNECTION_URI", "azure_ad_authorization_endpoint_uri": "EXO_AUTHORITY_URI",
    "graph_uri": "EXO_GRAPH_URI", "delegated_organization": "EXO_DELEGATED_ORGANIZATION", "proxy": "HTTPS_PROXY",
    "validate_certs": "EXO_VALIDATE_CERTS", "ca_path": "EXO_CA_PATH", "token_cache_path": "EXO_TOKEN_CACHE_PATH",
    "timeout": "EXO_TIMEOUT",
}
SECRETS = {"client_secret", "certificate", "certificate_password", "password", "access_token"}


class Fail(Exception):
    pass


@pytest.fixture
def make(monkeypatch):
    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(_module.ExoModule, "fail_json", fail_json)
    patchers = []

    def _make(**args):
        try:
            from ansible.module_utils.testing import patch_module_args
        except ImportError:  # ansible-core < 2.19
            monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
            return _module.ExoModule(argument_spec={}, supports_check_mode=True)
        patcher = patch_module_args(args)
        patcher.__enter__()
        patchers.append(patcher)
        return _module.ExoModule(argument_spec={}, supports_check_mode=True)

    yield _make
    for patcher in patchers:
        patcher.__exit__(None, None, None)


def test_spec_has_every_design_option_with_its_environment_variable():
    spec = _module.AUTH_ARGUMENT_SPEC
    assert set(spec) == set(DESIGN_OPTIONS)
    for option, env in DESIGN_OPTIONS.items():
        assert spec[option]["fallback"][1] == [env], option
        assert bool(spec[option].get("no_log")) == (option in SECRETS), option


def test_environment_fallback(make, monkeypatch):
    monkeypatch.setenv("EXO_ORGANIZATION", "contoso.onmicrosoft.com")
    monkeypatch.setenv("EXO_TIMEOUT", "42")
    module = make()
    assert module.params["organization"] == "contoso.onmicrosoft.com"
    assert module.params["timeout"] == 42
    assert module.params["auth_method"] == "auto"
    assert module.params["exchange_environment_name"] == "O365Default"


def test_empty_environment_variables_count_as_unset(make, monkeypatch):
    # AWX injects blank credential fields as empty variables; they must not be invalid choices.
    for name in ("EXO_ENVIRONMENT", "EXO_AUTH_METHOD", "EXO_VALIDATE_CERTS", "EXO_TIMEOUT", "EXO_CLIENT_SECRET"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("EXO_TOKEN_CACHE_PATH", "")
    module = make()
    assert module.params["exchange_environment_name"] == "O365Default"
    assert module.params["auth_method"] == "auto"
    assert module.params["validate_certs"] is True
    assert module.params["timeout"] == 300
    assert module.params["client_secret"] is None
    # Here an empty value keeps its meaning: no token cache.
    assert module.params["token_cache_path"] == ""


def test_certificate_options_are_mutually_exclusive(make):
    with pytest.raises(Fail) as caught:
        make(certificate_path="/a.pem", certificate="-----BEGIN")
    assert "mutually exclusive" in caught.value.args[0]["msg"]


def test_password_requires_user_principal_name(make):
    with pytest.raises(Fail) as caught:
        make(password="pw")
    assert "user_principal_name" in caught.value.args[0]["msg"]


def test_secrets_are_no_log_values(make):
    module = make(client_secret="topsecret-value", app_id="app")
    assert "topsecret-value" in module.no_log_values
    assert "app" not in module.no_log_values


@pytest.mark.parametrize("args, identity, expected", [
    ({}, {"upn": "admin@contoso.onmicrosoft.com", "app_only": False}, "UPN:admin@contoso.onmicrosoft.com"),
    ({"organization": "contoso.onmicrosoft.com"}, {"app_only": True},
     "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"),
    ({"organization": "6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11"}, {"app_only": True},
     "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@6f9a4e1c-0f77-4c1d-9a52-3c1f0f6d2b11"),
    ({"organization": "contoso.onmicrosoft.com", "delegated_organization": "fabrikam.onmicrosoft.com"}, {"app_only": True},
     "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@fabrikam.onmicrosoft.com"),
    ({"organization": "contoso.onmicrosoft.com", "delegated_organization": "fabrikam.onmicrosoft.com"},
     {"upn": "admin@contoso.onmicrosoft.com", "app_only": False}, "UPN:admin@contoso.onmicrosoft.com"),
])
def test_anchor_mailbox(make, args, identity, expected):
    assert make(**args).anchor_mailbox(identity) == expected


def test_tenant_segment(make):
    assert make(organization="contoso.onmicrosoft.com").tenant_segment({"tid": "t"}) == "contoso.onmicrosoft.com"
    assert make(organization="c", delegated_organization="f").tenant_segment({"tid": "t"}) == "f"
    assert make().tenant_segment({"tid": "t"}) == "t"


def test_fail_from_exo_error_keeps_fields_and_redacts(make):
    module = make(client_secret="hunter2-secret", app_id="a", organization="o")
    with pytest.raises(Fail) as caught:
        module.fail_from_exception(ExoAuthError("bad hunter2-secret", status=401, code="X", details={"a": 1}))
    result = caught.value.args[0]
    assert result == {"msg": "bad ********", "status": 401, "code": "X", "details": {"a": 1}}


def test_fail_from_other_exception_has_short_message_and_redacted_traceback(make):
    module = make(password="pw-value-123", user_principal_name="u")
    result = None
    try:
        raise RuntimeError("boom pw-value-123")
    except RuntimeError as exc:
        try:
            module.fail_from_exception(exc, msg="doing things")
        except Fail as failed:
            result = failed.args[0]
    assert result["msg"] == "doing things: RuntimeError: boom ********"
    assert "pw-value-123" not in result["exception"] and "Traceback" in result["exception"]


class FakeTokens:
    method = "client_secret"
    app_only = True

    def __init__(self, claims):
        self.claims = claims

    def get_token(self, resource):
        return AccessToken("eyJ.x.y", int(time.time()) + 3600, self.claims)


class RecordingClient:
    built = []

    def __init__(self, http, auth, base_uri, tenant, anchor_mailbox, warn=None, page_size=1000):
        self.base_uri = base_uri
        RecordingClient.built.append((base_uri, tenant, anchor_mailbox, auth.resource))

    def discover_scc_base(self, scc_uri):
        return "https://nam12b.ps.compliance.protection.outlook.com"


def test_exo_client_for_both_services(make, monkeypatch):
    monkeypatch.setattr(_exo, "ExoClient", RecordingClient)
    RecordingClient.built = []
    module = make(organization="contoso.onmicrosoft.com", app_id="a", client_secret="secret-x")
    module._tokens = FakeTokens({"appid": "a", "tid": "t", "roles": ["Exchange.ManageAsApp"]})
    client = module.exo_client()
    assert client.base_uri == "https://outlook.office365.com"
    client = module.exo_client("security_compliance")
    assert client.base_uri == "https://nam12b.ps.compliance.protection.outlook.com"
    assert module.scc_base_uri == "https://nam12b.ps.compliance.protection.outlook.com"
    anchor = "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"
    assert RecordingClient.built == [
        ("https://outlook.office365.com", "contoso.onmicrosoft.com", anchor, "https://outlook.office365.com"),
        ("https://ps.compliance.protection.outlook.com", "contoso.onmicrosoft.com", anchor,
         "https://ps.compliance.protection.outlook.com"),
        ("https://nam12b.ps.compliance.protection.outlook.com", "contoso.onmicrosoft.com", anchor,
         "https://ps.compliance.protection.outlook.com"),
    ]
