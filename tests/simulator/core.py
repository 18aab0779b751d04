# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP framework and shared state of the tenant simulator.

Code API (every service is written against this; keep it stable):

``Request``
    ``method``, ``path`` (no query), ``query`` (dict str -> str, last value wins), ``raw_query``,
    ``headers`` (case-insensitive ``.get``), ``body`` (bytes), ``json()`` (raises ``BadRequest``),
    ``host`` ("ip:port" of the local socket the request arrived on), ``scheme`` ("https"/"http"),
    ``origin`` ("https://ip" or "http://ip:port" as a client would write it), ``url()`` (origin + path
    [+ query]), ``conn`` (dict living as long as the TCP connection: NTLM / keep-alive state),
    ``client`` (peer address tuple).

``Response(status, body=b"", headers=None)``
    ``Response.json(status, obj, headers=None)``, ``Response.text(status, text, content_type=...)``,
    ``Response.reset()`` (close the TCP connection with a RST, no answer).  ``headers`` is a dict.

``Service``
    ``name`` (entra | exchange | scc | graph | winrm) - the name faults are injected under.
    ``claims(req) -> bool`` (default True): whether the request is this service's; services that share a
    Listener (Entra ID and Exchange on address +0) are asked in order and the first that claims a request
    gets it; faults for that service are applied BEFORE ``handle`` runs.
    ``handle(req) -> Response | None`` (None -> 404).
    ``error_response(status, code, message, headers=None) -> Response``: the body shape used for faults,
    bad requests and rejected tokens (default: ``{"error": {"code", "message"}}``, the Exchange/Graph shape).
    Exceptions raised by ``handle``: ``BadRequest`` -> 400, ``TokenRejected`` -> its status with a
    ``WWW-Authenticate: Bearer`` header, anything else -> 500 (traceback on stderr).

``Listener(sim, address, port, services, tls=True)``
    ``ThreadingHTTPServer`` (daemon threads, HTTP/1.1 keep-alive, one write per response, TCP_NODELAY).
    ``.start()``, ``.stop()``, ``.address``, ``.port`` (the bound port, also when 0 was asked).
    With ``tls=True`` it uses ``sim.tls_context`` (an ``ssl.SSLContext`` holding the certificate signed by
    DIR/ca.pem); the TLS handshake runs in the connection's thread.

``Sim`` (shared state, one per process)
    ``seed``, ``token_lifetime``, ``state_dir``, ``organization``, ``tenant_id``, ``mailboxes``,
    ``device_code_polls``, ``verbose``, ``addresses`` (dict role -> ip; roles ``entra``, ``exchange``
    (both +0), ``graph`` (+1), ``scc`` (+2), ``scc_regional`` (+3)), ``origin(role)`` ("https://ip"),
    ``audiences(service)`` (the ``aud`` values a service accepts: its origin plus the real resource URL and
    the resource app id), ``counters``, ``faults``, ``tokens``, ``directory`` (set by entra: apps, users,
    tenants; see entra.Directory), ``record_write(service, operation, target, body)``, ``writes()``,
    ``log(msg)`` (stderr only with --verbose), ``tls_context``.
    ``counters.incr(group, key, n=1)``: ``key`` may be a tuple for nested groups, e.g.
    ``incr("wsman", (host, "get"))``; ``counters.snapshot()`` -> nested dict copy; ``counters.reset()``.
    Groups: ``token_requests`` {grant}, ``invoke_command`` {cmdlet}, ``writes`` {service},
    ``wsman`` {host: {get, put, shell_create, shell_delete, command}}, ``graph`` {method}, ``faults`` {kind}.
    ``faults.take(service, req) -> Fault | None`` (the Listener calls it), ``faults.add(spec)``,
    ``faults.clear()``, ``faults.list()``.
    ``tokens.issue(claims, lifetime=None) -> (jwt, exp)`` (RS256, ``kid``; adds iat, nbf, exp, uti),
    ``tokens.verify(authorization_header, audiences, tenant=None) -> claims`` raising
    ``TokenRejected(status, code, message)``: codes ``missing_token``, ``invalid_token`` (malformed or bad
    signature), ``expired_token`` (past exp, or expired through the control API), ``invalid_audience``,
    ``invalid_tenant``; ``tokens.expire_all()``; ``tokens.jwks()``.

Constructor contract of the other services (``__main__`` imports them lazily and wires them):

- ``exchange.ExchangeService(sim)``: Service ``exchange`` on +0 after Entra ID (Entra claims its own paths).
- ``exchange.ComplianceService(sim, regional_base)``: Service ``scc`` on +2, the generic Security &
  Compliance host that answers with a 302 to ``regional_base`` ("https://<+3 ip>").
- ``exchange.ComplianceRegionalService(sim)``: Service ``scc`` on +3.
- ``graph.GraphService(sim)``: Service ``graph`` on +1.
- ``winrm.Workstations(sim, count, address)``: ``.start()``, ``.stop()``, ``.endpoints() -> list[dict]`` (the
  endpoints.json "workstations" entries), ``.control(req) -> Response | None`` (control routes under
  ``/workstations/``).  Its listeners run on their own ports of ``address`` (+0).
- ``ExchangeService``, ``ComplianceService``, ``ComplianceRegionalService`` and ``GraphService`` may expose
  ``.control(req) -> Response | None`` for control routes under ``/exchange/`` and ``/graph/``.
"""

from __future__ import annotations

import base64
import collections
import copy
import hashlib
import itertools
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Directory role template ids (learn.microsoft.com "Microsoft Entra built-in roles").
ROLE_EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
ROLE_GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
ROLE_GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"

# Resources (reference exchange-online-rest.md §12, graph-named-locations.md): real URL and resource app id.
EXCHANGE_RESOURCE = "https://outlook.office365.com"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
SCC_RESOURCE = "https://ps.compliance.protection.outlook.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

SERVICE_NAMES = ("entra", "exchange", "scc", "graph", "winrm")
FAULT_KINDS = ("429", "500", "502", "503", "504", "reset", "non_json", "slow", "expire_tokens")


class BadRequest(Exception):
    """The request cannot be understood (answered 400 by the Listener)."""


class TokenRejected(Exception):
    """A bearer token was refused."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Request:
    """One HTTP request as the services see it."""

    __slots__ = ("method", "path", "query", "raw_query", "headers", "body", "host", "scheme", "conn", "client")

    def __init__(self, method, path, query, raw_query, headers, body, host, scheme, conn, client):
        self.method = method
        self.path = path
        self.query = query
        self.raw_query = raw_query
        self.headers = headers
        self.body = body
        self.host = host
        self.scheme = scheme
        self.conn = conn
        self.client = client

    def json(self):
        if not self.body:
            raise BadRequest("The request body is empty; a JSON body is required.")
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadRequest("The request body is not valid JSON: %s" % exc) from None

    @property
    def origin(self):
        ip, port = self.host.rsplit(":", 1)
        if (self.scheme, port) in (("https", "443"), ("http", "80")):
            return "%s://%s" % (self.scheme, ip)
        return "%s://%s" % (self.scheme, self.host)

    def url(self, with_query=True):
        if with_query and self.raw_query:
            return "%s%s?%s" % (self.origin, self.path, self.raw_query)
        return self.origin + self.path


class Response:
    """An answer; ``Response.reset()`` closes the connection instead of answering."""

    __slots__ = ("status", "body", "headers", "is_reset")

    def __init__(self, status, body=b"", headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = dict(headers or {})
        self.is_reset = False

    @classmethod
    def json(cls, status, obj, headers=None):
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(obj, separators=(",", ":")).encode("utf-8"), hdrs)

    @classmethod
    def text(cls, status, text, content_type="text/plain; charset=utf-8"):
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type})

    @classmethod
    def reset(cls):
        resp = cls(0)
        resp.is_reset = True
        return resp


class Service:
    """Base class of the simulated services."""

    name = "service"

    def claims(self, req):  # pylint: disable=unused-argument
        return True

    def handle(self, req):  # pylint: disable=unused-argument
        return None

    def error_response(self, status, code, message, headers=None):
        return Response.json(status, {"error": {"code": code, "message": message}}, headers)


class Fault:
    """One injected fault (see Faults.add for the fields)."""

    def __init__(self, fid, service, kind, count=1, retry_after=None, after=0, match=None, delay=0.0, status=None):
        self.id = fid
        self.service = service
        self.kind = kind
        self.count = count
        self.retry_after = retry_after
        self.after = after
        self.match = match
        self.delay = delay
        self.status = status
        self.skipped = 0
        self.fired = 0

    def as_dict(self):
        return {k: getattr(self, k) for k in ("id", "service", "kind", "count", "retry_after", "after", "match",
                                              "delay", "status", "skipped", "fired")}

    def matches(self, service, req):
        if self.service in (None, "*", "any"):
            if service not in SERVICE_NAMES:  # the control API is never faulted
                return False
        elif self.service != service:
            return False
        if self.match:
            if self.match in req.path or self.match in req.raw_query:
                return True
            return self.match.encode("utf-8") in req.body
        return True


class Faults:
    """Injected faults, taken in the order they were added."""

    def __init__(self, counters):
        self._lock = threading.Lock()
        self._faults = []
        self._ids = itertools.count(1)
        self._counters = counters

    def add(self, spec):
        """Add a fault from a control API body; raises BadRequest naming the bad field."""
        if not isinstance(spec, dict):
            raise BadRequest("The fault must be a JSON object.")
        unknown = set(spec) - {"service", "kind", "count", "retry_after", "after", "match", "delay", "status"}
        if unknown:
            raise BadRequest("Unknown fault field(s): %s." % ", ".join(sorted(unknown)))
        service = spec.get("service")
        if service not in SERVICE_NAMES + ("*", "any", None):
            raise BadRequest("Fault field 'service' must be one of %s (or '*')." % ", ".join(SERVICE_NAMES))
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise BadRequest("Fault field 'kind' must be one of %s." % ", ".join(FAULT_KINDS))
        try:
            count = int(spec["count"]) if spec.get("count") is not None else 1
            after = int(spec.get("after") or 0)
            delay = float(spec.get("delay") or (2.0 if kind == "slow" else 0.0))
            retry_after = spec.get("retry_after")
            if retry_after is not None and not isinstance(retry_after, str):
                retry_after = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
            status = int(spec["status"]) if spec.get("status") is not None else None
        except (TypeError, ValueError):
            raise BadRequest("Fault fields count, after, status must be integers and delay, retry_after numbers.") from None
        match = spec.get("match")
        if match is not None and not isinstance(match, str):
            raise BadRequest("Fault field 'match' must be a string.")
        fault = Fault(next(self._ids), service, kind, count, retry_after, after, match, delay, status)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self):
        with self._lock:
            self._faults = []

    def list(self):
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def take(self, service, req):
        """The fault to apply to this request, or None. count < 0 means until cleared."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(service, req):
                    continue
                if fault.skipped < fault.after:
                    fault.skipped += 1
                    continue
                fault.fired += 1
                if fault.count >= 0 and fault.fired >= fault.count:
                    self._faults.remove(fault)
                break
            else:
                return None
        self._counters.incr("faults", fault.kind)
        return fault


class Counters:
    """Thread-safe nested counters."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data = {}

    def incr(self, group, key, n=1):
        keys = (group,) + (tuple(key) if isinstance(key, (tuple, list)) else (key,))
        with self._lock:
            node = self._data
            for k in keys[:-1]:
                node = node.setdefault(k, {})
            node[keys[-1]] = node.get(keys[-1], 0) + n

    def get(self, group, key=None):
        with self._lock:
            node = self._data.get(group, {})
            return copy.deepcopy(node if key is None else node.get(key, 0))

    def snapshot(self):
        with self._lock:
            return copy.deepcopy(self._data)

    def reset(self):
        with self._lock:
            self._data = {}


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Tokens:
    """Signs and verifies the access tokens the simulated Entra ID issues."""

    def __init__(self, sim):
        self._sim = sim
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public = self._key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64url(hashlib.sha1(der).digest())  # nosec - a key id, not security
        self._seq = itertools.count(1)
        self._expired_up_to = 0
        self._lock = threading.Lock()
        self._cache = collections.OrderedDict()  # token -> claims, bounded: verify is on every request

    def issue(self, claims, lifetime=None):
        now = int(time.time())
        lifetime = self._sim.token_lifetime if lifetime is None else lifetime
        body = {"iat": now, "nbf": now, "exp": now + int(lifetime)}
        body.update(claims)
        body["uti"] = "%x.%s" % (next(self._seq), _b64url(os.urandom(9)))
        token = jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})
        return token, body["exp"]

    def expire_all(self):
        """Every token issued so far is rejected as expired from now on."""
        with self._lock:
            self._expired_up_to = next(self._seq)
            self._cache.clear()

    def public_key_pem(self):
        return self._public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwks(self):
        numbers = self._public.public_numbers()

        def b64int(value):
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                          "n": b64int(numbers.n), "e": b64int(numbers.e), "alg": "RS256"}]}

    def decode(self, token):
        """Claims of a token this simulator signed (signature checked, nothing else); TokenRejected if not."""
        try:
            return jwt.decode(token, self._public, algorithms=["RS256"],
                              options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                       "verify_iat": False})
        except jwt.InvalidTokenError:
            raise TokenRejected(401, "invalid_token", "The access token is malformed or its signature is invalid.") from None

    def verify(self, authorization, audiences, tenant=None):
        if not authorization:
            raise TokenRejected(401, "missing_token", "The request has no Authorization header with a bearer token.")
        scheme, dummy, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRejected(401, "missing_token", "The Authorization header is not a bearer token.")
        with self._lock:
            claims = self._cache.get(token)
        if claims is None:
            claims = self.decode(token)
            with self._lock:
                self._cache[token] = claims
                if len(self._cache) > 256:
                    self._cache.popitem(last=False)
        seq = int(str(claims.get("uti", "0.")).split(".", 1)[0] or "0", 16)
        if claims.get("exp", 0) <= time.time() or seq < self._expired_up_to:
            raise TokenRejected(401, "expired_token", "The access token has expired.")
        aud = str(claims.get("aud", "")).rstrip("/").lower()
        if aud not in {a.rstrip("/").lower() for a in audiences}:
            raise TokenRejected(401, "invalid_audience", "The access token's audience '%s' is not valid for this service." % claims.get("aud"))
        if tenant is not None:
            directory = self._sim.directory
            tid = directory.tenant_id(tenant) if directory is not None else tenant
            if tid is None or tid.lower() != str(claims.get("tid", "")).lower():
                raise TokenRejected(401, "invalid_tenant", "The access token was issued for another tenant than '%s'." % tenant)
        return claims


class Sim:
    """Shared state of one simulator process."""

    def __init__(self, state_dir, seed=1, token_lifetime=3600, addresses=None, mailboxes=2500,
                 device_code_polls=3, verbose=False, organization="contoso.onmicrosoft.com"):
        self.state_dir = str(state_dir)
        self.seed = int(seed)
        self.token_lifetime = int(token_lifetime)
        self.mailboxes = int(mailboxes)
        self.device_code_polls = int(device_code_polls)
        self.verbose = verbose
        self.organization = organization
        self.tenant_id = self.stable_uuid("tenant", organization)
        self.addresses = dict(addresses or {})
        self.counters = Counters()
        self.faults = Faults(self.counters)
        self.tokens = Tokens(self)
        self.directory = None
        self.tls_context = None
        self._writes = collections.deque(maxlen=20000)
        self._write_seq = itertools.count(1)
        self._log_lock = threading.Lock()

    def stable_uuid(self, *parts):
        """A GUID derived from the seed and the parts: the same on every run with the same seed."""
        digest = hashlib.sha256(("%d|" % self.seed + "|".join(str(p) for p in parts)).encode("utf-8")).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def origin(self, role):
        return "https://%s" % self.addresses[role]

    def audiences(self, service):
        if service == "exchange":
            return (self.origin("exchange"), EXCHANGE_RESOURCE, EXCHANGE_APP_ID)
        if service == "scc":
            return (self.origin("scc"), self.origin("scc_regional"), SCC_RESOURCE)
        if service == "graph":
            return (self.origin("graph"), GRAPH_RESOURCE, GRAPH_APP_ID)
        raise ValueError("no audiences for service %r" % service)

    def record_write(self, service, operation, target, body):
        entry = {"seq": next(self._write_seq), "time": time.time(), "service": service,
                 "operation": operation, "target": target, "body": body}
        self._writes.append(entry)
        self.counters.incr("writes", service)
        return entry

    def writes(self):
        return list(self._writes)

    def clear_writes(self):
        self._writes.clear()

    def log(self, msg):
        if self.verbose:
            with self._log_lock:
                sys.stderr.write("simulator: %s\n" % msg)
                sys.stderr.flush()


_REASONS = BaseHTTPRequestHandler.responses
_LINGER_RST = struct.pack("ii", 1, 0)
_NON_JSON = b"<html><head><title>Service Unavailable</title></head><body><h1>The service is unavailable.</h1></body></html>"
_date_cache = [0, ""]


def _http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[1] = formatdate(now, usegmt=True)
        _date_cache[0] = now
    return _date_cache[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "m365ops-simulator"
    sys_version = ""
    timeout = 300  # idle keep-alive connections end eventually

    def setup(self):
        super().setup()
        self.conn_state = {}
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        self.server.sim.log("%s %s" % (self.address_string(), format % args))

    def log_request(self, code="-", size="-"):
        if self.server.sim.verbose:
            super().log_request(code, size)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        server = self.server
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        path, dummy, raw_query = self.path.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form request target
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        query = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
        req = Request(self.command, path, query, raw_query, self.headers, body, server.host_port,
                      server.scheme, self.conn_state, self.client_address)
        resp = server.route(req)
        if resp.is_reset:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            except OSError:
                pass
            self.close_connection = True
            return
        self._send(resp)

    def _send(self, resp):
        lines = ["HTTP/1.1 %d %s" % (resp.status, _REASONS.get(resp.status, ("Unknown",))[0]),
                 "Date: " + _http_date(), "Server: m365ops-simulator"]
        has_type = False
        for name, value in resp.headers.items():
            low = name.lower()
            if low == "content-length":
                continue
            if low == "content-type":
                has_type = True
            if low == "connection" and value.lower() == "close":
                self.close_connection = True
            lines.append("%s: %s" % (name, value))
        if resp.body and not has_type:
            lines.append("Content-Type: application/octet-stream")
        body = b"" if self.command == "HEAD" else resp.body
        lines.append("Content-Length: %d" % len(resp.body))
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)
        self.log_request(resp.status, len(resp.body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, listener):
        self.sim = listener.sim
        self.listener = listener
        self.scheme = "https" if listener.tls else "http"
        self.tls_context = listener.sim.tls_context if listener.tls else None
        super().__init__((listener.address, listener.port), _Handler)
        self.host_port = "%s:%d" % self.server_address[:2]

    def server_bind(self):
        # http.server's server_bind sets server_name with socket.getfqdn(address): a reverse DNS query that
        # waits for the resolver's timeout (seconds) when no DNS answers, per listener (400 for 200
        # workstations). Nothing here uses server_name, so bind without the lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(30)
            tls = self.tls_context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout)):
            return
        if self.sim.verbose or not isinstance(exc, OSError):
            super().handle_error(request, client_address)

    def route(self, req):
        return self.listener.route(req)


class Listener:
    """One HTTP(S) server on address:port serving some services."""

    def __init__(self, sim, address, port, services, tls=True):
        self.sim = sim
        self.address = address
        self.tls = tls
        self.services = list(services)
        self.port = port
        if tls and sim.tls_context is None:
            raise RuntimeError("Listener(tls=True) needs sim.tls_context (see tls.py)")
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="listener-%s:%d" % (self.address, self.port), daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def route(self, req):
        service = None
        for candidate in self.services:
            if candidate.claims(req):
                service = candidate
                break
        if service is None:
            return Response.json(404, {"error": {"code": "NotFound", "message": "No service at %s" % req.path}})
        try:
            fault = self.sim.faults.take(service.name, req)
            if fault is not None:
                resp = self.apply_fault(service, fault)
                if resp is not None:
                    return resp
            resp = service.handle(req)
            if resp is None:
                return service.error_response(404, "NotFound", "The resource '%s' does not exist." % req.path)
            return resp
        except BadRequest as exc:
            return service.error_response(400, "BadRequest", str(exc))
        except TokenRejected as exc:
            challenge = 'Bearer error="invalid_token", error_description="%s"' % exc.message.replace('"', "'")
            return service.error_response(exc.status, exc.code, exc.message, {"WWW-Authenticate": challenge})
        except Exception:  # pylint: disable=broad-except
            sys.stderr.write("simulator: error in %s handling %s %s\n%s" % (service.name, req.method, req.path,
                                                                            traceback.format_exc()))
            return service.error_response(500, "InternalServerError", "The simulator failed; see its stderr.")

    def apply_fault(self, service, fault):
        """The response a fault produces, or None when the service should answer (slow, expire_tokens)."""
        self.sim.log("fault %s on %s" % (fault.kind, service.name))
        kind = fault.kind
        if kind == "reset":
            return Response.reset()
        if kind == "slow":
            time.sleep(fault.delay)
            return None
        if kind == "expire_tokens":
            self.sim.tokens.expire_all()
            return None
        if kind == "non_json":
            resp = Response(fault.status or 200, _NON_JSON, {"Content-Type": "text/html; charset=utf-8"})
        else:
            status = int(kind)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
            message = "Too many requests; retry later." if status == 429 else "Injected fault: HTTP %d." % status
            code = "TooManyRequests" if status == 429 else _REASONS.get(status, ("Error",))[0].replace(" ", "")
            resp = service.error_response(status, code, message, headers)
        if fault.delay:
            time.sleep(fault.delay)
        return resp
