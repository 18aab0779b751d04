# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""One HTTP session for every request the collection makes.

This layer knows no service and no credential flow: it verifies TLS (``verify`` passed on every
request so ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` never override ``ca_path``/``validate_certs``),
uses the proxy, applies timeouts, retries throttled and transient failures, answers a 401 with one
token refresh, and redacts secrets from anything that may reach a message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import email.utils
import os
import re
import time

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # the import sanity test runs without requests
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoHttpError

try:
    from urllib.parse import quote_plus, urlsplit, urlunsplit
except ImportError:  # pragma: no cover - Python 2 is not supported, kept for the import test
    from urllib import quote_plus  # type: ignore
    from urlparse import urlsplit, urlunsplit  # type: ignore

# Statuses retried with backoff. Exchange's own client retries 401/503/504 (reference
# exchange-online-rest.md §9); 429 waits Retry-After; 500/502 are transient at the front doors.
RETRY_STATUSES = (429, 500, 502, 503, 504)
REDACTED = "********"

_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/=]+")
_AUTH_HEADER_RE = re.compile(
    r"(?i)(['\"]?(?:authorization|x-identity-header|x-ms-client-secret)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(?:bearer|basic|negotiate|ntlm)\s+)?[^'\"\s,}]+"
)
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*")
_SECRET_FIELD_RE = re.compile(
    r"(?i)(['\"]?\b(?:client_secret|password|refresh_token|access_token|id_token|client_assertion|device_code|"
    r"code_verifier|private_key|certificate_password)['\"]?\s*[:=]\s*['\"]?)([^'\"&\s,}]+)"
)


def redact(text, secrets=()):
    """Remove bearer tokens, Authorization values, JWTs, secret form/JSON fields and the given secret values."""
    if text is None:
        return text
    if not isinstance(text, str):
        text = str(text)
    # Longest first, so a secret that contains another one is removed whole; also the
    # URL-encoded form a secret takes in a form body.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        secret = str(secret)
        if len(secret) < 3:
            continue
        text = text.replace(secret, REDACTED)
        encoded = quote_plus(secret)
        if encoded != secret:
            text = text.replace(encoded, REDACTED)
    text = _BEARER_RE.sub(lambda m: m.group(1) + " " + REDACTED, text)
    text = _AUTH_HEADER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _JWT_RE.sub(REDACTED, text)
    text = _SECRET_FIELD_RE.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def strip_query(url):
    """The URL without query and fragment (query strings can carry codes and skip tokens)."""
    try:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header: delta-seconds (float accepted) or an HTTP date."""
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class _MsalHttpClient:
    """What msal accepts as ``http_client``: get/post/close through the collection's session."""

    def __init__(self, http):
        self._http = http

    def get(self, url, params=None, headers=None, **kwargs):
        return self._http._send("GET", url, params=params, headers=headers, for_msal=True)

    def post(self, url, params=None, data=None, headers=None, **kwargs):
        return self._http._send("POST", url, params=params, data=data, json=kwargs.get("json"),
                                headers=headers, for_msal=True)

    def close(self):
        # The session belongs to HttpClient and outlives msal's use of it.
        return None


class HttpClient:
    """requests session with the collection's TLS, proxy, timeout, retry and redaction rules."""

    # Connection errors seen while msal talks to identity providers are retried less: an
    # unreachable federation server should fail in seconds with its own message.
    MSAL_CONNECTION_RETRIES = 1

    def __init__(self, validate_certs=True, ca_path=None, proxy=None, timeout=60, max_retries=5,
                 backoff_base=2.0, backoff_cap=60.0, secrets=(), warn=None, sleep=time.sleep):
        if not HAS_REQUESTS:
            raise ImportError("requests is required: %s" % REQUESTS_IMPORT_ERROR)
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.verify = (ca_path or True) if validate_certs else False
        self.proxy = proxy or None
        self.proxies = {"http": self.proxy, "https": self.proxy} if self.proxy else {}
        self.timeout = timeout
        # Connecting never needs minutes; reading a long cmdlet's answer may (server timeout 15 min, §17).
        self.timeouts = (min(30, timeout), timeout) if timeout else None
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.secrets = list(secrets or ())
        self.warn = warn
        self.sleep = sleep
        self.retries = 0
        self.session = requests.Session()
        # Environment settings (REQUESTS_CA_BUNDLE, proxies, ~/.netrc credentials) must not change
        # what the options say; the proxy option already falls back to HTTPS_PROXY.
        self.session.trust_env = False
        if not validate_certs:
            try:
                import urllib3
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            except ImportError:
                pass

    def add_secret(self, value):
        """Register one more value to redact (for example a token obtained at run time)."""
        if value and value not in self.secrets:
            self.secrets.append(value)

    def redact(self, text):
        return redact(text, self.secrets)

    def backoff(self, attempt):
        """Capped exponential backoff: base * 2^attempt seconds (reference §9: 2 s x 2^n), at most backoff_cap."""
        return min(self.backoff_cap, self.backoff_base * (2 ** attempt))

    def request(self, method, url, headers=None, json=None, data=None, params=None, auth=None,
                allow_redirects=True, stream=False):
        return self._send(method, url, headers=headers, json=json, data=data, params=params, auth=auth,
                          allow_redirects=allow_redirects, stream=stream)

    def msal_http_client(self):
        return _MsalHttpClient(self)

    def _send(self, method, url, headers=None, json=None, data=None, params=None, auth=None,
              allow_redirects=True, stream=False, for_msal=False):
        attempt = 0
        refreshed = False
        connection_retries = self.MSAL_CONNECTION_RETRIES if for_msal else self.max_retries
        while True:
            request_headers = dict(headers or {})
            if auth is not None:
                request_headers["Authorization"] = auth.header()
            try:
                response = self.session.request(
                    method, url, headers=request_headers, json=json, data=data, params=params,
                    verify=self.verify, proxies=self._proxies_for(url), timeout=self.timeouts,
                    allow_redirects=allow_redirects, stream=stream,
                )
            except requests.exceptions.SSLError as exc:
                if for_msal:
                    raise
                raise ExoHttpError(
                    "TLS verification failed for %s: %s. Give the CA bundle that signed the server certificate "
                    "in ca_path (or set validate_certs=false only for testing)." % (strip_query(url), self.redact(_reason(exc))),
                    details={"url": strip_query(url)},
                )
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if attempt >= connection_retries:
                    if for_msal:
                        raise
                    raise ExoHttpError(
                        "%s %s failed after %d attempts: %s. Check network access to the service, the proxy option "
                        "and the timeout option." % (method, strip_query(url), attempt + 1, self.redact(_reason(exc))),
                        details={"url": strip_query(url), "attempts": attempt + 1},
                    )
                self._wait(self.backoff(attempt))
                attempt += 1
                continue

            status = response.status_code
            if status == 401 and auth is not None and not refreshed:
                # One refresh, then one retry: a token expired or revoked early (reference §9 lists
                # 401 among the retryable responses after token renewal).
                refreshed = True
                response.close()
                auth.refresh()
                continue
            if status in RETRY_STATUSES:
                if attempt >= self.max_retries:
                    if for_msal:
                        # msal turns the body into its own error; give it the response.
                        return response
                    raise ExoHttpError(
                        "%s %s failed with HTTP %d after %d attempts: %s" % (
                            method, strip_query(url), status, attempt + 1, self.redact(_body_text(response))),
                        status=status,
                        details={"url": strip_query(url), "attempts": attempt + 1},
                    )
                wait = None
                if status in (429, 503):
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is None:
                    wait = self.backoff(attempt)
                response.close()
                self._wait(min(wait, self.backoff_cap))
                attempt += 1
                continue
            return response

    def _proxies_for(self, url):
        """The proxy, unless NO_PROXY names the host (managed identity endpoints must not be proxied)."""
        if not self.proxies:
            return self.proxies
        no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy")
        if no_proxy and requests.utils.should_bypass_proxies(url, no_proxy=no_proxy):
            return {}
        return self.proxies

    def _wait(self, seconds):
        self.retries += 1
        if seconds > 0:
            self.sleep(seconds)


def _reason(exc):
    """The innermost readable reason of a requests exception (urllib3 nests them)."""
    text = str(exc)
    match = re.search(r"\[Errno [^\]]+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    match = re.search(r"(Connection refused|Name or service not known|timed out|Connection reset by peer|"
                      r"certificate verify failed[^'\")]*|RemoteDisconnected[^'\")]*)", text)
    if match:
        return match.group(1).strip()
    return text[:300]


def _body_text(response, limit=500):
    try:
        text = response.text
    except Exception:  # pylint: disable=broad-except
        return "<unreadable body>"
    text = (text or "").strip()
    if len(text) > limit:
        text = text[:limit] + "..."
    return text or "<empty body>"
