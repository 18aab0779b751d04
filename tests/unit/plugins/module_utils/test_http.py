# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_http.py against a fake session: retries, Retry-After, backoff cap, 401 refresh, TLS, redaction."""

from __future__ import annotations

import email.utils

import pytest
import requests

from ansible_collections.m365ops.exchange_online.plugins.module_utils import _http
from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoHttpError

URL = "https://outlook.example/adminapi/beta/contoso/InvokeCommand?$skiptoken=abc"


class FakeResponse:
    def __init__(self, status, text="", headers=None):
        self.status_code = status
        self.text = text
        self.headers = headers or {}
        self.closed = False

    def close(self):
        self.closed = True


class FakeSession:
    """Answers scripted outcomes (responses or exceptions) in order and records every call."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append(dict(kwargs, method=method, url=url))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class FakeAuth:
    def __init__(self):
        self.token = "eyJhbGciOi.eyJzdWIiOi.sig1"
        self.refreshes = 0

    def header(self):
        return "Bearer " + self.token

    def refresh(self):
        self.refreshes += 1
        self.token = "eyJhbGciOi.eyJzdWIiOi.sig2"


def make(*outcomes, **kwargs):
    sleeps = []
    client = _http.HttpClient(sleep=sleeps.append, **kwargs)
    client.session = FakeSession(*outcomes)
    return client, sleeps


def test_success_passes_verify_proxy_and_timeout_on_every_request(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    client, _sleeps = make(FakeResponse(200, "{}"), ca_path="/etc/ca.pem", proxy="http://proxy:3128", timeout=30)
    response = client.request("GET", URL)
    assert response.status_code == 200
    call = client.session.calls[0]
    assert call["verify"] == "/etc/ca.pem"
    assert call["proxies"] == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert call["timeout"] == (30, 30)


def test_no_proxy_hosts_bypass_the_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "169.254.169.254,.internal.example")
    client, _sleeps = make(FakeResponse(200), FakeResponse(200), proxy="http://proxy:3128", timeout=300)
    client.request("GET", "http://169.254.169.254/metadata/identity/oauth2/token")
    client.request("GET", URL)
    assert client.session.calls[0]["proxies"] == {}
    assert client.session.calls[1]["proxies"] == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert client.session.calls[1]["timeout"] == (30, 300)


def test_trust_env_off_and_validate_certs_false():
    client = _http.HttpClient(validate_certs=False)
    assert client.session.trust_env is False
    assert client.verify is False
    assert _http.HttpClient().verify is True


def test_429_honours_retry_after_seconds_and_float():
    client, sleeps = make(FakeResponse(429, headers={"Retry-After": "7"}), FakeResponse(429, headers={"Retry-After": "1.5"}),
                          FakeResponse(200))
    assert client.request("POST", URL).status_code == 200
    assert sleeps == [7.0, 1.5]
    assert client.retries == 2


def test_retry_after_http_date():
    when = email.utils.formatdate(1000.0 + 12, usegmt=True)
    assert _http.parse_retry_after(when, now=1000.0) == pytest.approx(12.0)
    assert _http.parse_retry_after("garbage") is None
    assert _http.parse_retry_after(None) is None
    assert _http.parse_retry_after("-3") == 0.0


def test_retry_after_is_capped():
    client, sleeps = make(FakeResponse(429, headers={"Retry-After": "3600"}), FakeResponse(200), backoff_cap=60.0)
    client.request("GET", URL)
    assert sleeps == [60.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transient_statuses_use_exponential_backoff(status):
    client, sleeps = make(FakeResponse(status), FakeResponse(status), FakeResponse(status), FakeResponse(200))
    assert client.request("GET", URL).status_code == 200
    assert sleeps == [2.0, 4.0, 8.0]


def test_backoff_is_capped():
    client = _http.HttpClient(backoff_base=2.0, backoff_cap=10.0)
    assert [client.backoff(n) for n in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_exhausted_retries_raise_with_status_url_without_query_and_redacted_body():
    body = "Server busy; Authorization: Bearer eyJabc.eyJdef.ghi secret=hunter22"
    client, sleeps = make(*[FakeResponse(503, body) for _attempt in range(3)], max_retries=2, secrets=["hunter22"])
    with pytest.raises(ExoHttpError) as caught:
        client.request("POST", URL)
    message = caught.value.message
    assert caught.value.status == 503
    assert "HTTP 503 after 3 attempts" in message
    assert "https://outlook.example/adminapi/beta/contoso/InvokeCommand" in message
    assert "skiptoken" not in message
    assert "hunter22" not in message and "eyJ" not in message
    assert len(sleeps) == 2


def test_connection_errors_are_retried_then_reported():
    error = requests.exceptions.ConnectionError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))")
    client, sleeps = make(error, error, FakeResponse(200))
    assert client.request("GET", URL).status_code == 200
    assert sleeps == [2.0, 4.0]

    client, _sleeps = make(error, error, max_retries=1)
    with pytest.raises(ExoHttpError) as caught:
        client.request("GET", URL)
    assert "failed after 2 attempts" in caught.value.message
    assert "Connection reset by peer" in caught.value.message


def test_tls_failure_names_ca_path():
    client, sleeps = make(requests.exceptions.SSLError("certificate verify failed: self signed certificate"))
    with pytest.raises(ExoHttpError) as caught:
        client.request("GET", URL)
    assert "ca_path" in caught.value.message
    assert sleeps == []


def test_401_refreshes_once_then_retries():
    auth = FakeAuth()
    client, sleeps = make(FakeResponse(401), FakeResponse(200))
    assert client.request("POST", URL, auth=auth).status_code == 200
    assert auth.refreshes == 1
    assert [c["headers"]["Authorization"] for c in client.session.calls] == [
        "Bearer eyJhbGciOi.eyJzdWIiOi.sig1", "Bearer eyJhbGciOi.eyJzdWIiOi.sig2"]
    assert sleeps == []


def test_second_401_is_returned_to_the_caller():
    auth = FakeAuth()
    client, _sleeps = make(FakeResponse(401), FakeResponse(401, "denied"))
    response = client.request("POST", URL, auth=auth)
    assert response.status_code == 401 and response.text == "denied"
    assert auth.refreshes == 1


def test_401_without_auth_is_returned():
    client, _sleeps = make(FakeResponse(401))
    assert client.request("GET", URL).status_code == 401


def test_other_4xx_returned_without_retry():
    client, sleeps = make(FakeResponse(404, "nope"))
    assert client.request("GET", URL).status_code == 404
    assert sleeps == []


def test_msal_http_client_goes_through_the_session_with_verify():
    client, _sleeps = make(FakeResponse(200, "{}"), FakeResponse(200, "{}"), ca_path="/etc/ca.pem")
    msal_client = client.msal_http_client()
    msal_client.get("https://login.example/t/v2.0/.well-known/openid-configuration", headers={"a": "b"})
    msal_client.post("https://login.example/t/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
    assert [c["verify"] for c in client.session.calls] == ["/etc/ca.pem", "/etc/ca.pem"]
    assert client.session.calls[1]["data"] == {"grant_type": "client_credentials"}
    msal_client.close()


def test_msal_http_client_raises_connection_errors_quickly():
    error = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    client, sleeps = make(error, error)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.msal_http_client().get("https://adfs.example/adfs/services/trust/mex")
    assert len(sleeps) == _http.HttpClient.MSAL_CONNECTION_RETRIES


def test_msal_http_client_returns_final_error_response_to_msal():
    client, _sleeps = make(*[FakeResponse(503, '{"error":"temporarily_unavailable"}') for _attempt in range(3)], max_retries=2)
    response = client.msal_http_client().post("https://login.example/t/oauth2/v2.0/token", data={})
    assert response.status_code == 503


@pytest.mark.parametrize("text, secrets, gone, kept", [
    ("Authorization: Bearer abc.def-ghi rest", (), ["abc.def-ghi"], ["rest", "Authorization"]),
    ('{"Authorization": "Bearer xyz123"}', (), ["xyz123"], ["Authorization"]),
    ("token eyJhbGciOiJSUzI1NiJ9.eyJ1cG4iOiJ4In0.c2ln here", (), ["eyJhbGciOiJSUzI1NiJ9"], ["here"]),
    ("client_secret=s%2Bcret&grant_type=client_credentials", (), ["s%2Bcret"], ["grant_type=client_credentials"]),
    ('{"password": "P@ss w0rd"}', ("P@ss w0rd",), ["P@ss"], ["password"]),
    ("the secret a+b/c= appears, encoded a%2Bb%2Fc%3D too", ("a+b/c=",), ["a+b/c=", "a%2Bb%2Fc%3D"], ["appears"]),
    ("refresh_token=0.AAA.bbb&x=1", (), ["0.AAA.bbb"], ["x=1"]),
    ("short secrets ab are not replaced", ("ab",), [], ["ab"]),
])
def test_redact(text, secrets, gone, kept):
    out = _http.redact(text, secrets)
    for item in gone:
        assert item not in out
    for item in kept:
        assert item in out


def test_redact_none_and_non_string():
    assert _http.redact(None) is None
    assert _http.redact(401) == "401"


def test_strip_query():
    assert _http.strip_query(URL) == "https://outlook.example/adminapi/beta/contoso/InvokeCommand"
