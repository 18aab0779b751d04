# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Microsoft Graph named locations: the client, and the CIDR rules applied before any request.

Wire format (Microsoft Graph v1.0 ``/identity/conditionalAccess/namedLocations``; sources: the
microsoft-graph-docs-contrib pages for list/create/update/delete of namedLocations, Entra
``concept-assignment-network.md`` for the limits):
- list 200 ``{"value": [...], "@odata.nextLink"?}``, get 200, create 201 + the object with ``id``,
  ``createdDateTime``, ``modifiedDateTime``; update is PATCH 204 without a body and its body MUST carry
  ``"@odata.type": "#microsoft.graph.ipNamedLocation"``; a supplied ``ipRanges`` replaces the whole list;
  delete 204, and a trusted location must be untrusted (PATCH ``isTrusted: false``) before it can be deleted.
- every range is ``{"@odata.type": "#microsoft.graph.iPv4CidrRange" | "#microsoft.graph.iPv6CidrRange",
  "cidrAddress": "a.b.c.d/n"}``; bare addresses are refused, so a host becomes /32 or /128 here.
- limits: 195 named locations per tenant, 2000 ranges per location, CIDR masks longer than /8.
- errors: ``{"error": {"code", "message", "innerError": {...}}}``; 403 ``Authorization_RequestDenied`` when
  the app lacks Policy.Read.All / Policy.ReadWrite.ConditionalAccess.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import (
    ExoConfigError,
    ExoServiceError,
)

from urllib.parse import urlsplit

NAMED_LOCATIONS_PATH = "/v1.0/identity/conditionalAccess/namedLocations"
IP_NAMED_LOCATION = "#microsoft.graph.ipNamedLocation"
IPV4_RANGE = "#microsoft.graph.iPv4CidrRange"
IPV6_RANGE = "#microsoft.graph.iPv6CidrRange"
IP_FILTER = "isof('microsoft.graph.ipNamedLocation')"

# Entra ID limits (concept-assignment-network.md).
MAX_NAMED_LOCATIONS = 195
MAX_RANGES = 2000
MIN_PREFIX = 9  # "CIDR masks greater than /8"

READ_PERMISSION = "Policy.Read.All"
WRITE_PERMISSION = "Policy.ReadWrite.ConditionalAccess"

# Placeholder id of a location that check mode predicts (it does not exist yet).
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"

# How many ranges one warning lists before "and N more".
_SHOWN = 10

# A stop for a service that never stops answering with another next link.
_MAX_PAGES = 1000


class GraphClient:
    """Named locations through one HttpClient and one BearerAuth for the Graph resource."""

    def __init__(self, http, auth, graph_uri):
        self.http = http
        self.auth = auth
        self.graph_uri = graph_uri.rstrip("/")
        self.collection_url = self.graph_uri + NAMED_LOCATIONS_PATH
        self.requests = 0

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(self, method, url, operation, write=False, json=None, params=None):
        headers = {"Accept": "application/json"}
        self.requests += 1
        response = self.http.request(method, url, headers=headers, json=json, params=params, auth=self.auth)
        if response.status_code >= 400:
            raise self._error(response, operation, write)
        return response

    @staticmethod
    def _json(response, operation):
        try:
            return response.json()
        except ValueError:
            raise ExoServiceError(
                "Microsoft Graph answered %s with HTTP %d and a body that is not JSON; check graph_uri "
                "(it must be the Graph root of the tenant's cloud, for example https://graph.microsoft.com)."
                % (operation, response.status_code),
                status=response.status_code,
            )

    def _error(self, response, operation, write):
        """A Graph error answer -> ExoServiceError with Graph's code and message."""
        status = response.status_code
        code, message, request_id = None, None, None
        try:
            error = (response.json() or {}).get("error") or {}
            if isinstance(error, dict):
                code = error.get("code")
                message = error.get("message")
                inner = error.get("innerError") or error.get("innererror") or {}
                if isinstance(inner, dict):
                    request_id = inner.get("request-id")
        except ValueError:
            pass
        if not message:
            try:
                message = (response.text or "").strip()[:300] or response.reason
            except Exception:  # pylint: disable=broad-except
                message = "HTTP %d" % status
        message = self.http.redact(message)
        details = {"operation": operation}
        if request_id:
            details["request_id"] = request_id
        if status == 403:
            needed = WRITE_PERMISSION if write else "%s or %s" % (READ_PERMISSION, WRITE_PERMISSION)
            text = ("Microsoft Graph refused to %s (HTTP 403 %s: %s). The app needs the Microsoft Graph permission %s "
                    "(application permission with admin consent for app-only sign-in; for delegated sign-in the "
                    "delegated permission plus a role such as Conditional Access Administrator)."
                    % (operation, code or "Forbidden", message, needed))
            details["missing_permission"] = WRITE_PERMISSION if write else READ_PERMISSION
        elif status == 401:
            text = ("Microsoft Graph did not accept the access token to %s (HTTP 401 %s: %s). Check that graph_uri "
                    "and exchange_environment_name name the tenant's cloud, so the token is issued for that Graph."
                    % (operation, code or "Unauthorized", message))
        else:
            text = "Microsoft Graph refused to %s (HTTP %d %s: %s)" % (operation, status, code or "error", message)
        return ExoServiceError(text, status=status, code=code, details=details)

    def _same_origin(self, url):
        mine, theirs = urlsplit(self.graph_uri), urlsplit(url)
        return (mine.scheme, mine.netloc.lower()) == (theirs.scheme, theirs.netloc.lower())

    # --- named locations ----------------------------------------------------------------------

    def list_named_locations(self, filter_expression=None, select=None):
        """Every named location (following @odata.nextLink), optionally filtered server-side."""
        params = {}
        if filter_expression:
            params["$filter"] = filter_expression
        if select:
            params["$select"] = ",".join(select)
        operation = "list named locations"
        url, seen, out = self.collection_url, set(), []
        while url:
            if len(seen) >= _MAX_PAGES:
                raise ExoServiceError("Microsoft Graph kept returning further pages of named locations (more than %d); "
                                      "stopped following @odata.nextLink." % _MAX_PAGES)
            seen.add(url)
            body = self._json(self._request("GET", url, operation, params=params or None), operation)
            value = body.get("value") if isinstance(body, dict) else None
            if not isinstance(value, list):
                raise ExoServiceError("Microsoft Graph answered the named location list without a 'value' list; "
                                      "check graph_uri.")
            out.extend(value)
            url = body.get("@odata.nextLink")
            params = {}  # the next link already carries the query
            if url and (url in seen or not self._same_origin(url)):
                # Never send the token elsewhere, and never loop on a repeated link.
                raise ExoServiceError("Microsoft Graph returned an unusable @odata.nextLink (%s); stopped paging."
                                      % url.split("?", 1)[0])
        return out

    def list_ip_named_locations(self):
        """IP named locations only (``$filter=isof('microsoft.graph.ipNamedLocation')``)."""
        return [loc for loc in self.list_named_locations(IP_FILTER)
                if loc.get("@odata.type", IP_NAMED_LOCATION) == IP_NAMED_LOCATION]

    def count_named_locations(self):
        """How many named locations of any kind the tenant holds (for the 195 limit)."""
        return len(self.list_named_locations(select=["id"]))

    def get_named_location(self, location_id):
        operation = "read named location %s" % location_id
        body = self._json(self._request("GET", "%s/%s" % (self.collection_url, location_id), operation), operation)
        body.pop("@odata.context", None)
        return body

    def create_named_location(self, body):
        body = dict(body)
        body.setdefault("@odata.type", IP_NAMED_LOCATION)
        operation = "create named location '%s'" % body.get("displayName")
        created = self._json(self._request("POST", self.collection_url, operation, write=True, json=body), operation)
        created.pop("@odata.context", None)
        return created

    def update_named_location(self, location_id, body):
        """PATCH (204, no body); ``@odata.type`` is always sent, as Graph requires."""
        body = dict(body)
        body["@odata.type"] = body.get("@odata.type") or IP_NAMED_LOCATION
        operation = "update named location %s" % location_id
        self._request("PATCH", "%s/%s" % (self.collection_url, location_id), operation, write=True, json=body)

    def delete_named_location(self, location_id):
        operation = "delete named location %s" % location_id
        self._request("DELETE", "%s/%s" % (self.collection_url, location_id), operation, write=True)


# --- CIDR rules ----------------------------------------------------------------------------------


def parse_range(value, label="ip_ranges"):
    """One range -> ``ipaddress`` network. A bare address becomes /32 or /128.

    Host bits set (``192.0.2.7/24``) are refused, not silently widened: trusting a whole network when a
    single host was meant would bypass MFA for everyone in it.
    """
    text = value.strip() if isinstance(value, str) else value
    if text is None or text == "":
        raise ExoConfigError("%s: an empty value is not an IP range; give an address or CIDR range such as 203.0.113.0/24."
                             % label)
    if not isinstance(text, str):
        raise ExoConfigError("%s: %r is not an IP range; give a string such as 203.0.113.0/24." % (label, value))
    shown = "'%s'" % text
    if "%" in text:
        raise ExoConfigError("%s %s: an IPv6 zone index (%%...) is not allowed in a named location range." % (label, shown))
    if text.count("/") > 1:
        raise ExoConfigError("%s %s: a CIDR range has exactly one '/prefix'." % (label, shown))
    address, _sep, prefix = text.partition("/")
    if "-" in address:
        raise ExoConfigError("%s %s: address ranges with '-' are not supported; give CIDR ranges such as 203.0.113.0/24."
                             % (label, shown))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        if address == text:
            raise ExoConfigError("%s %s is not a valid IPv4 or IPv6 address or CIDR range." % (label, shown))
        raise ExoConfigError("%s %s: '%s' is not a valid IPv4 or IPv6 address." % (label, shown, address))
    if _sep:
        if not prefix.isdigit():
            raise ExoConfigError("%s %s: the prefix length '%s' is not a number (IPv4: 9-32, IPv6: 9-128)."
                                 % (label, shown, prefix))
        length = int(prefix)
        if length > ip.max_prefixlen:
            raise ExoConfigError("%s %s: the prefix length /%d is longer than an IPv%d address (/%d)."
                                 % (label, shown, length, ip.version, ip.max_prefixlen))
    else:
        length = ip.max_prefixlen
    network = ipaddress.ip_network((ip, length), strict=False)
    if network.network_address != ip:
        raise ExoConfigError("%s %s has host bits set; use %s for the whole network or %s/%d for the single address."
                             % (label, shown, network, ip, ip.max_prefixlen))
    if length < MIN_PREFIX:
        raise ExoConfigError("%s %s: the prefix /%d is too short; Entra ID named locations accept CIDR masks longer "
                             "than /8 (/%d-/%d). Split it into longer prefixes."
                             % (label, shown, length, MIN_PREFIX, ip.max_prefixlen))
    return network


# Address space a user might copy from an intranet by mistake (RFC 1918, shared/CGNAT, loopback,
# link-local, IPv6 unique-local): Entra ID only ever sees public egress addresses.
_INTERNAL = [(n.version, int(n.network_address), int(n.broadcast_address)) for n in (ipaddress.ip_network(text) for text in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "fc00::/7", "fe80::/10", "::1/128"))]


def _internal(network):
    start, end = int(network.network_address), int(network.broadcast_address)
    return any(network.version == version and start <= last and first <= end for version, first, last in _INTERNAL)


def _overlaps(networks):
    """Pairs (wider, narrower) where one range contains another, found by one sweep per family.

    CIDR blocks either nest or are disjoint, so after sorting by (start, prefix) a block overlaps an
    earlier one exactly when it starts before the end of the widest block seen so far.
    """
    pairs = []
    for version in (4, 6):
        family = sorted((n for n in networks if n.version == version),
                        key=lambda n: (int(n.network_address), n.prefixlen))
        widest = None
        for net in family:
            if widest is not None and int(net.network_address) <= int(widest.broadcast_address):
                pairs.append((widest, net))
                if int(net.broadcast_address) > int(widest.broadcast_address):
                    widest = net
            else:
                widest = net
    return pairs


def normalize_ranges(values, label="ip_ranges"):
    """Validate and canonicalise a list of ranges.

    Returns ``(ranges, warnings)``: ``ranges`` are canonical CIDR strings (network address, IPv6
    compressed lower case) in the given order without duplicates. Duplicates, overlapping ranges and
    ranges Entra ID never sees (private, loopback, link-local...) are reported as warnings. Raises
    ExoConfigError naming the first bad range and its position; no request has been made at that point.
    """
    if values is None:
        return None, []
    networks, seen, warnings, internal = [], {}, [], []
    for index, value in enumerate(values):
        net = parse_range(value, "%s[%d]" % (label, index))
        key = str(net)
        if key in seen:
            warnings.append("%s[%d] '%s' repeats %s[%d] (%s); the duplicate is ignored."
                            % (label, index, value, label, seen[key], key))
            continue
        seen[key] = index
        networks.append(net)
        if _internal(net):
            internal.append(key)
    if len(networks) > MAX_RANGES:
        raise ExoConfigError("%s has %d distinct ranges; an Entra ID named location holds at most %d. Split them across "
                             "locations or summarise them into wider prefixes." % (label, len(networks), MAX_RANGES))
    if internal:
        shown = ", ".join(internal[:_SHOWN]) + (" and %d more" % (len(internal) - _SHOWN) if len(internal) > _SHOWN else "")
        verb, pronoun = ("is", "it") if len(internal) == 1 else ("are", "they")
        warnings.append("%s: %s %s not public: Entra ID sees the public egress address of a network, never its internal "
                        "addresses, so %s will not match sign-ins." % (label, shown, verb, pronoun))
    ranges = [str(n) for n in networks]
    return ranges, warnings + overlap_warnings(ranges, label=label)


def overlap_warnings(cidrs, new=None, label="ip_ranges"):
    """Warnings for ranges contained in other ranges.

    With ``new`` (the ranges appended to a location's existing ones), only pairs of one new and one
    existing range: pairs among the new ranges were already reported when they were normalised.
    """
    new = set(new) if new is not None else None
    pairs = ["%s in %s" % (narrower, wider) for wider, narrower in _overlaps([ipaddress.ip_network(c) for c in cidrs])
             if new is None or (str(wider) in new) != (str(narrower) in new)]
    if not pairs:
        return []
    shown = ", ".join(pairs[:_SHOWN]) + (" and %d more" % (len(pairs) - _SHOWN) if len(pairs) > _SHOWN else "")
    return ["%s: %d %s contained in another range (%s); both are kept, but the narrower one adds nothing."
            % (label, len(pairs), "range is" if len(pairs) == 1 else "ranges are", shown)]


def canonical_existing(ranges):
    """Ranges as Graph holds them -> canonical strings (Graph echoes non-canonical CIDRs as sent)."""
    out = []
    for item in ranges or []:
        cidr = item.get("cidrAddress") if isinstance(item, dict) else item
        try:
            out.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except (ValueError, AttributeError):
            out.append(str(cidr))
    return out


def range_body(cidr):
    """A canonical CIDR string -> Graph's iPv4CidrRange / iPv6CidrRange object (its @odata.type is required)."""
    version = ipaddress.ip_network(cidr).version
    return {"@odata.type": IPV4_RANGE if version == 4 else IPV6_RANGE, "cidrAddress": cidr}


def same_ranges(left, right):
    """Order-insensitive comparison of two lists of canonical CIDR strings."""
    return set(left or []) == set(right or [])


def location_result(location):
    """A Graph ipNamedLocation -> the module's snake_case ``named_location``."""
    if not location:
        return {}
    return {
        "id": location.get("id"),
        "display_name": location.get("displayName"),
        "is_trusted": bool(location.get("isTrusted", False)),
        "ip_ranges": canonical_existing(location.get("ipRanges")),
        "created_date_time": location.get("createdDateTime"),
        "modified_date_time": location.get("modifiedDateTime"),
    }
