# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Microsoft Graph, as far as the collection uses it: Conditional Access named locations.

Wire format (Graph v1.0, ``/identity/conditionalAccess/namedLocations``):
- list 200 ``{"@odata.context", "value": [...], "@odata.nextLink"?}``, get 200, create 201 + the object
  (with ``id``, ``createdDateTime``, ``modifiedDateTime``), PATCH 204 without a body (the body must carry
  ``@odata.type``; properties left out keep their values; ``ipRanges`` replaces the whole list), DELETE 204.
- a location marked trusted cannot be deleted before it is untrusted.
- limits: 195 named locations per tenant, 2000 ranges per location, IPv4 prefix longer than /8, every range
  needs ``@odata.type`` and a ``cidrAddress`` with a prefix (a bare address is refused). Ranges are echoed
  back as sent (Graph keeps non-canonical CIDRs such as ``12.34.221.11/22``).
- permissions: ``Policy.Read.All`` or ``Policy.ReadWrite.ConditionalAccess`` to read,
  ``Policy.ReadWrite.ConditionalAccess`` to write (app ``roles`` or delegated ``scp``).
- errors: ``{"error": {"code", "message", "innerError": {"request-id", "date", "client-request-id"}}}``;
  403 ``Authorization_RequestDenied`` "Insufficient privileges to complete the operation.", 401
  ``InvalidAuthenticationToken``, 400 for bad bodies, 404 for an unknown id.
The list pages at 100 (``$top`` up to 999) so clients' ``@odata.nextLink`` handling is exercised.

Control routes (plain HTTP control API, forwarded here for paths under ``/graph/``):
- ``GET /graph/named-locations`` -> ``{"value": [every location of every tenant, with "tenantId"]}``
- ``POST /graph/named-locations`` with one location (Graph shape, ``tenantId`` optional) or a list of them:
  inserts them directly (no limits, not counted, not recorded as writes) -> 201 ``{"value": [...]}``
- ``DELETE /graph/named-locations/{id}`` -> removes one location directly (trusted or not; not recorded).
- ``DELETE /graph/named-locations?prefix=P`` -> removes every location whose displayName starts with P.
- ``POST /graph/reset`` -> back to the seeded locations.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import random
import re
import threading
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode

from .core import BadRequest, Response, Service, TokenRejected

COLLECTION_PATH = "/v1.0/identity/conditionalaccess/namedlocations"

IP_TYPE = "#microsoft.graph.ipNamedLocation"
COUNTRY_TYPE = "#microsoft.graph.countryNamedLocation"
V4_TYPE = "#microsoft.graph.iPv4CidrRange"
V6_TYPE = "#microsoft.graph.iPv6CidrRange"

# Entra limits (concept-assignment-network.md): 195 locations per tenant, 2000 ranges per location,
# IPv4 CIDR prefix longer than /8.
MAX_LOCATIONS = 195
MAX_RANGES = 2000
MIN_V4_PREFIX = 9

PAGE_SIZE = 100
MAX_TOP = 999

READ_PERMISSIONS = ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess")
WRITE_PERMISSIONS = ("Policy.ReadWrite.ConditionalAccess",)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ISOF = re.compile(r"^isof\('(microsoft\.graph\.[A-Za-z]+)'\)$")
_NAME_EQ = re.compile(r"^displayName eq '((?:[^']|'')*)'$")


class GraphError(Exception):
    """A Graph error answer: status, code, message."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error_response(err, request_id=None):
    request_id = request_id or str(uuid.uuid4())
    body = {"error": {"code": err.code, "message": err.message,
                      "innerError": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                                     "request-id": request_id, "client-request-id": request_id}}}
    headers = {"request-id": request_id, "client-request-id": request_id}
    headers.update(err.headers)
    return Response.json(err.status, body, headers=headers)


def _bad(message, code="BadRequest"):
    return GraphError(400, code, message)


def _validate_ranges(ranges):
    """Check ``ipRanges`` as Graph does; return a deep copy (ranges are echoed back as sent)."""
    if not isinstance(ranges, list) or not ranges:
        raise _bad("ipRanges must be a non-empty collection of iPv4CidrRange or iPv6CidrRange.")
    if len(ranges) > MAX_RANGES:
        raise _bad("The named location has %d IP ranges; at most %d are allowed." % (len(ranges), MAX_RANGES))
    for item in ranges:
        if not isinstance(item, dict):
            raise _bad("Each element of ipRanges must be an object.")
        odata_type = item.get("@odata.type")
        cidr = item.get("cidrAddress")
        if odata_type not in (V4_TYPE, V6_TYPE):
            raise _bad("Each element of ipRanges requires @odata.type %s or %s." % (V4_TYPE, V6_TYPE))
        unknown = set(item) - {"@odata.type", "cidrAddress"}
        if unknown:
            raise _bad("Property '%s' does not exist on type '%s'." % (sorted(unknown)[0], odata_type[1:]))
        if not isinstance(cidr, str) or "/" not in cidr:
            raise _bad("Invalid IP range '%s': cidrAddress must be in CIDR notation (address/prefix)." % (cidr,))
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise _bad("Invalid IP range '%s': not a valid CIDR address." % cidr)
        if network.version == 4 and odata_type != V4_TYPE or network.version == 6 and odata_type != V6_TYPE:
            raise _bad("Invalid IP range '%s': its @odata.type %s does not match the address family." % (cidr, odata_type))
        if network.version == 4 and network.prefixlen < MIN_V4_PREFIX:
            raise _bad("Invalid IP range '%s': IPv4 CIDR masks must be greater than /8." % cidr)
    return copy.deepcopy(ranges)


def _granted(claims):
    """The permissions a token carries: app ``roles`` plus delegated ``scp``."""
    granted = set(claims.get("roles") or [])
    scp = claims.get("scp") or ""
    granted.update(scp.split() if isinstance(scp, str) else scp)
    return granted


class GraphService(Service):
    name = "graph"

    def __init__(self, sim):
        self.sim = sim
        self._lock = threading.Lock()
        self._rng = random.Random("graph-%s" % sim.seed)
        self._tenants = {}  # tenant id -> list of locations (insertion order = list order)

    # --- state -------------------------------------------------------------------------------

    def _new_id(self):
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _seed(self):
        """Every tenant starts with a country location and an untrusted IP location."""
        stamp = "2024-03-01T08:00:00.000000Z"
        return [
            {"@odata.type": COUNTRY_TYPE, "id": self._new_id(), "displayName": "Blocked countries",
             "createdDateTime": stamp, "modifiedDateTime": stamp,
             "countriesAndRegions": ["KP", "IR"], "includeUnknownCountriesAndRegions": False,
             "countryLookupMethod": "clientIpAddress"},
            {"@odata.type": IP_TYPE, "id": self._new_id(), "displayName": "Branch office guest Wi-Fi",
             "createdDateTime": stamp, "modifiedDateTime": stamp, "isTrusted": False,
             "ipRanges": [{"@odata.type": V4_TYPE, "cidrAddress": "198.51.100.0/24"},
                          {"@odata.type": V6_TYPE, "cidrAddress": "2001:db8:100::/48"}]},
        ]

    def _locations(self, tenant):
        if tenant not in self._tenants:
            self._tenants[tenant] = self._seed()
        return self._tenants[tenant]

    def reset(self):
        with self._lock:
            self._rng = random.Random("graph-%s" % self.sim.seed)
            self._tenants = {}

    # --- HTTP --------------------------------------------------------------------------------

    def handle(self, req):
        path = req.path.rstrip("/")
        lower = path.lower()
        if not (lower.startswith("/v1.0") or lower.startswith("/beta")):
            return None
        self.sim.counters.incr("graph", req.method)
        try:
            claims = self._authenticate(req)
            tenant = claims.get("tid") or self.sim.tenant_id
            if lower == COLLECTION_PATH:
                if req.method == "GET":
                    self._require(claims, READ_PERMISSIONS)
                    return self._list(req, tenant)
                if req.method == "POST":
                    self._require(claims, WRITE_PERMISSIONS)
                    return self._create(req, tenant)
                raise GraphError(405, "Request_BadRequest", "The HTTP method '%s' is not allowed." % req.method)
            if lower.startswith(COLLECTION_PATH + "/"):
                location_id = path[len(COLLECTION_PATH) + 1:]
                if "/" in location_id:
                    raise GraphError(400, "BadRequest", "Resource not found for the segment '%s'." % location_id.split("/")[1])
                if req.method == "GET":
                    self._require(claims, READ_PERMISSIONS)
                    return self._get(req, tenant, location_id)
                if req.method == "PATCH":
                    self._require(claims, WRITE_PERMISSIONS)
                    return self._update(req, tenant, location_id)
                if req.method == "DELETE":
                    self._require(claims, WRITE_PERMISSIONS)
                    return self._delete(tenant, location_id)
                raise GraphError(405, "Request_BadRequest", "The HTTP method '%s' is not allowed." % req.method)
            raise GraphError(400, "BadRequest", "Resource not found for the segment '%s'." % path.rsplit("/", 1)[-1])
        except GraphError as err:
            return _error_response(err)

    # Graph's wording for refused tokens (401 InvalidAuthenticationToken, graph-named-locations.md §7).
    _TOKEN_MESSAGES = {
        "missing_token": "Access token is empty.",
        "expired_token": "Lifetime validation failed, the token is expired.",
        "invalid_audience": "Access token validation failure. Invalid audience.",
        "invalid_tenant": "Access token validation failure. Invalid tenant.",
    }

    def _authenticate(self, req):
        audiences = list(self.sim.audiences("graph")) + [req.origin]
        try:
            return self.sim.tokens.verify(req.headers.get("Authorization"), audiences)
        except TokenRejected as exc:
            message = self._TOKEN_MESSAGES.get(exc.code, "IDX14100: JWT is not well formed.")
            raise GraphError(exc.status, "InvalidAuthenticationToken", message,
                             headers={"WWW-Authenticate": 'Bearer realm="", authorization_uri="%s", error="invalid_token"'
                                                          % self.sim.origin("entra")})

    def error_response(self, status, code, message, headers=None):
        """Faults and framework errors in Graph's shape too."""
        return _error_response(GraphError(status, code, message, headers))

    @staticmethod
    def _require(claims, permissions):
        if not _granted(claims) & set(permissions):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def _context(self, req, suffix=""):
        return "%s/v1.0/$metadata#identity/conditionalAccess/namedLocations%s" % (req.origin, suffix)

    # --- operations ----------------------------------------------------------------------------

    def _list(self, req, tenant):
        query = req.query
        top = PAGE_SIZE
        if "$top" in query:
            try:
                top = int(query["$top"])
            except ValueError:
                raise _bad("Invalid value '%s' for $top: an integer is required." % query["$top"])
            if top < 1 or top > MAX_TOP:
                raise _bad("Invalid page size specified: '%d'. Must be between 1 and %d inclusive." % (top, MAX_TOP))
        offset = 0
        if "$skiptoken" in query:
            try:
                offset = int(base64.urlsafe_b64decode(query["$skiptoken"].encode("ascii")).decode("ascii"))
            except (ValueError, UnicodeError):
                raise _bad("Invalid $skiptoken.", code="Request_BadRequest")
        elif "$skip" in query:
            try:
                offset = max(0, int(query["$skip"]))
            except ValueError:
                raise _bad("Invalid value '%s' for $skip." % query["$skip"])
        predicate = self._filter(query.get("$filter"))
        with self._lock:
            matching = [copy.deepcopy(loc) for loc in self._locations(tenant) if predicate(loc)]
        page = matching[offset:offset + top]
        body = {"@odata.context": self._context(req), "value": page}
        if offset + top < len(matching):
            params = dict(query)
            params.pop("$skip", None)
            params["$top"] = str(top)
            params["$skiptoken"] = base64.urlsafe_b64encode(str(offset + top).encode("ascii")).decode("ascii")
            body["@odata.nextLink"] = "%s%s?%s" % (req.origin, req.path, urlencode(params))
        return Response.json(200, body)

    @staticmethod
    def _filter(expression):
        """``isof('microsoft.graph.<type>')`` and ``displayName eq '...'``, joined by ``and``."""
        if not expression:
            return lambda loc: True
        tests = []
        for clause in re.split(r"\s+and\s+", expression.strip()):
            match = _ISOF.match(clause.strip())
            if match:
                wanted = "#" + match.group(1)
                if wanted not in (IP_TYPE, COUNTRY_TYPE, "#microsoft.graph.namedLocation"):
                    raise _bad("Invalid filter clause: unknown type '%s'." % match.group(1))
                tests.append(lambda loc, w=wanted: w == "#microsoft.graph.namedLocation" or loc["@odata.type"] == w)
                continue
            match = _NAME_EQ.match(clause.strip())
            if match:
                name = match.group(1).replace("''", "'")
                tests.append(lambda loc, n=name: loc.get("displayName") == n)
                continue
            raise _bad("Invalid filter clause: '%s' is not supported." % clause.strip())
        return lambda loc: all(test(loc) for test in tests)

    def _find(self, tenant, location_id):
        if not _GUID.match(location_id):
            raise _bad("Invalid object identifier '%s'." % location_id, code="Request_BadRequest")
        for loc in self._locations(tenant):
            if loc["id"].lower() == location_id.lower():
                return loc
        raise GraphError(404, "itemNotFound", "The named location '%s' was not found." % location_id)

    def _get(self, req, tenant, location_id):
        with self._lock:
            loc = copy.deepcopy(self._find(tenant, location_id))
        body = {"@odata.context": self._context(req, "/$entity")}
        body.update(loc)
        return Response.json(200, body)

    @staticmethod
    def _body(req):
        try:
            body = req.json()
        except BadRequest:
            raise _bad("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.")
        return body

    @staticmethod
    def _check_common(body, odata_type, creating):
        allowed = {"@odata.type", "displayName"}
        if odata_type == IP_TYPE:
            allowed |= {"isTrusted", "ipRanges"}
        else:
            allowed |= {"countriesAndRegions", "includeUnknownCountriesAndRegions", "countryLookupMethod"}
        if not creating:
            allowed |= {"id", "createdDateTime", "modifiedDateTime"}
        unknown = set(body) - allowed
        if unknown:
            raise _bad("Property '%s' does not exist on type '%s'." % (sorted(unknown)[0], odata_type[1:]))
        if "displayName" in body or creating:
            name = body.get("displayName")
            if not isinstance(name, str) or not name.strip():
                raise _bad("displayName is required and cannot be empty.")
            if len(name) > 256:
                raise _bad("displayName cannot be longer than 256 characters.")
        if "isTrusted" in body and not isinstance(body["isTrusted"], bool):
            raise _bad("isTrusted must be a boolean.")

    def _create(self, req, tenant):
        body = self._body(req)
        odata_type = body.get("@odata.type")
        if odata_type not in (IP_TYPE, COUNTRY_TYPE):
            raise _bad("The @odata.type property is required and must be %s or %s." % (IP_TYPE, COUNTRY_TYPE))
        self._check_common(body, odata_type, creating=True)
        stamp = _now()
        if odata_type == IP_TYPE:
            loc = {"@odata.type": IP_TYPE, "displayName": body["displayName"], "createdDateTime": stamp,
                   "modifiedDateTime": stamp, "isTrusted": bool(body.get("isTrusted", False)),
                   "ipRanges": _validate_ranges(body.get("ipRanges"))}
        else:
            countries = body.get("countriesAndRegions")
            if not isinstance(countries, list) or not countries or not all(isinstance(c, str) and len(c) == 2 for c in countries):
                raise _bad("countriesAndRegions must be a non-empty list of two-letter country codes.")
            loc = {"@odata.type": COUNTRY_TYPE, "displayName": body["displayName"], "createdDateTime": stamp,
                   "modifiedDateTime": stamp, "countriesAndRegions": list(countries),
                   "includeUnknownCountriesAndRegions": bool(body.get("includeUnknownCountriesAndRegions", False)),
                   "countryLookupMethod": body.get("countryLookupMethod", "clientIpAddress")}
        with self._lock:
            locations = self._locations(tenant)
            if len(locations) >= MAX_LOCATIONS:
                raise _bad("The tenant already has %d named locations, the maximum allowed." % MAX_LOCATIONS)
            loc["id"] = self._new_id()
            locations.append(loc)
            created = copy.deepcopy(loc)
        self.sim.record_write("graph", "create", "namedLocations/%s" % created["id"], body)
        out = {"@odata.context": self._context(req, "/$entity")}
        out.update(created)
        location_url = "%s%s/%s" % (req.origin, req.path.rstrip("/"), created["id"])
        return Response.json(201, out, headers={"Location": location_url})

    def _update(self, req, tenant, location_id):
        body = self._body(req)
        with self._lock:
            loc = self._find(tenant, location_id)
            # PATCH must name the derived type (ipnamedlocation-update.md).
            if "@odata.type" not in body:
                raise _bad("The request body must include '@odata.type' (for example %s)." % IP_TYPE)
            if body["@odata.type"] != loc["@odata.type"]:
                raise _bad("The @odata.type '%s' does not match the named location's type '%s'." % (body["@odata.type"], loc["@odata.type"]))
            self._check_common(body, loc["@odata.type"], creating=False)
            changes = {}
            if "ipRanges" in body:
                changes["ipRanges"] = _validate_ranges(body["ipRanges"])
            if "displayName" in body:
                changes["displayName"] = body["displayName"]
            if "isTrusted" in body:
                changes["isTrusted"] = body["isTrusted"]
            for key in ("countriesAndRegions", "includeUnknownCountriesAndRegions", "countryLookupMethod"):
                if key in body:
                    changes[key] = body[key]
            loc.update(changes)
            loc["modifiedDateTime"] = _now()
        self.sim.record_write("graph", "update", "namedLocations/%s" % loc["id"], body)
        return Response(204)

    def _delete(self, tenant, location_id):
        with self._lock:
            loc = self._find(tenant, location_id)
            if loc.get("isTrusted"):
                # concept-assignment-network.md: trusted locations must be untrusted before deletion.
                raise _bad("Locations marked as trusted can't be deleted without first removing the trusted designation.")
            self._tenants[tenant].remove(loc)
        self.sim.record_write("graph", "delete", "namedLocations/%s" % loc["id"], None)
        return Response(204)

    # --- control API ---------------------------------------------------------------------------

    def control(self, req):
        path = req.path.rstrip("/")
        if path == "/graph/named-locations" and req.method == "GET":
            with self._lock:
                self._locations(self.sim.tenant_id)
                out = []
                for tenant, locations in self._tenants.items():
                    for loc in locations:
                        item = copy.deepcopy(loc)
                        item["tenantId"] = tenant
                        out.append(item)
            return Response.json(200, {"value": out})
        if path == "/graph/named-locations" and req.method == "POST":
            try:
                body = req.json()
            except BadRequest:
                return Response.json(400, {"error": "body must be JSON"})
            items = body if isinstance(body, list) else [body]
            added = []
            with self._lock:
                for item in items:
                    if not isinstance(item, dict) or "displayName" not in item:
                        return Response.json(400, {"error": "each location needs at least displayName"})
                    loc = copy.deepcopy(item)
                    tenant = loc.pop("tenantId", None) or self.sim.tenant_id
                    loc.setdefault("@odata.type", IP_TYPE)
                    if loc["@odata.type"] == IP_TYPE:
                        loc.setdefault("isTrusted", False)
                        loc["ipRanges"] = [r if isinstance(r, dict) else
                                           {"@odata.type": V6_TYPE if ":" in r else V4_TYPE, "cidrAddress": r}
                                           for r in loc.get("ipRanges", [])]
                    stamp = _now()
                    loc.setdefault("createdDateTime", stamp)
                    loc.setdefault("modifiedDateTime", stamp)
                    loc.setdefault("id", self._new_id())
                    self._locations(tenant).append(loc)
                    added.append(copy.deepcopy(loc))
            return Response.json(201, {"value": added})
        if path == "/graph/named-locations" and req.method == "DELETE":
            prefix = (getattr(req, "query", None) or {}).get("prefix")
            if not prefix:
                return Response.json(400, {"error": "give ?prefix=<start of the display names to remove>"})
            removed = 0
            with self._lock:
                for tenant, locations in self._tenants.items():
                    keep = [loc for loc in locations if not str(loc.get("displayName", "")).startswith(prefix)]
                    removed += len(locations) - len(keep)
                    self._tenants[tenant] = keep
            return Response.json(200, {"deleted": removed})
        if path.startswith("/graph/named-locations/") and req.method == "DELETE":
            location_id = path.rsplit("/", 1)[1]
            with self._lock:
                for locations in self._tenants.values():
                    for loc in locations:
                        if loc["id"] == location_id:
                            locations.remove(loc)
                            return Response.json(200, {"deleted": location_id})
            return Response.json(404, {"error": "no named location %s" % location_id})
        if path == "/graph/reset" and req.method == "POST":
            self.reset()
            return Response.json(200, {"reset": True})
        return None
