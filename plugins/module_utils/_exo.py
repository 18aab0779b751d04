# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Exchange Online REST (InvokeCommand): request shape, paging generator, errors.

Wire format (reference exchange-online-rest.md, from public reimplementations of the EXO V3 module):
- §2: ``POST {base}/adminapi/beta/{tenant}/InvokeCommand``; ``?$select=A,B`` trims properties server-side.
- §3/§4: headers ``Authorization``, ``Content-Type: application/json``, ``X-AnchorMailbox`` (the admin's
  UPN when delegated, the organization mailbox when app-only; chosen by the caller), ``X-ResponseFormat: json``,
  ``Prefer: odata.maxpagesize=N`` (1..1000).
- §5: body ``{"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}``; switches are JSON ``true``,
  arrays JSON arrays, hashtables carry ``"@odata.type": "#Exchange.GenericHashTable"``, ``ResultSize`` an
  integer or ``"Unlimited"``. Parameters travel as JSON only, so no value is ever parsed as script.
- §6: results in ``value``; keys containing ``@`` are annotations and are dropped; warnings in
  ``@adminapi.warnings``.
- §7: ``@odata.nextLink`` (absolute) is re-POSTed with the same body and headers until absent; stop as
  soon as ``result_size`` items were read.
- §8: the error text is ``error.details[0].message`` = ``<id>|<ExceptionType>|<text>`` (split at most
  twice), falling back to ``error.innererror.internalexception.message`` and ``error.message``.
- §9: 429/5xx/connection errors and one 401 token refresh are handled by ``_http.HttpClient``; the
  transient Exchange exceptions listed there are retried here.
- §10: Security & Compliance answers on a regional host found through a 302 from the generic host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import uuid

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import (
    ExoAuthError,
    ExoConfigError,
    ExoHttpError,
    ExoServiceError,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._http import strip_query

try:
    from urllib.parse import quote, urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection's modules
    from urllib import quote  # type: ignore
    from urlparse import urlsplit  # type: ignore

API_PATH = "/adminapi/beta/%s/InvokeCommand"
MAX_PAGE_SIZE = 1000
HASHTABLE_TYPE = "#Exchange.GenericHashTable"

# Exceptions the autogen helper retries when they appear in details[0].message (reference §9).
RETRYABLE_EXCEPTIONS = ("DCOverloadedException", "SuitabilityDirectoryException", "ServerInMMException",
                        "ADServerSettingsChangedException", "StorageTransientException")
CONCURRENCY_TEXT = "maximum number of concurrent requests"

# The warnings Get-Mailbox and friends emit when ResultSize cut the list (the default 1000, or an explicit
# value). They become the ``truncated`` flag; modules phrase their own warning about it.
_TRUNCATION_RE = re.compile(r"(There are more results available than are currently displayed|"
                            r"By default, only the first \d+ items are returned)", re.IGNORECASE)
# Set-* cmdlets that changed nothing say so as a warning (changed=false in exo_command).
NO_CHANGE_RE = re.compile(r"completed successfully but no settings of .* have been modified", re.IGNORECASE)

_CMDLET_RE = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
_PARAMETER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PROPERTY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# Property sets of Get-EXOMailbox (reference §15; cmdlet-property-sets.md). Minimum is Microsoft's list;
# every other set also carries ExternalDirectoryObjectId, as the service's sets do.
PROPERTY_SETS = {
    "Minimum": ["Alias", "DisplayName", "DistinguishedName", "EmailAddresses", "ExchangeVersion",
                "ExternalDirectoryObjectId", "Guid", "Id", "Name", "OrganizationId", "PrimarySmtpAddress",
                "RecipientType", "RecipientTypeDetails", "UserPrincipalName"],
    "AddressList": ["AddressBookPolicy", "AddressListMembership", "GeneratedOfflineAddressBooks",
                    "HiddenFromAddressListsEnabled", "OfflineAddressBook"],
    "Archive": ["ArchiveDatabase", "ArchiveGuid", "ArchiveName", "ArchiveQuota", "ArchiveWarningQuota", "ArchiveState",
                "ArchiveStatus", "AutoExpandingArchiveEnabled", "DisabledArchiveDatabase", "DisabledArchiveGuid"],
    "Audit": ["AuditAdmin", "AuditDelegate", "AuditEnabled", "AuditLogAgeLimit", "AuditOwner", "DefaultAuditSet"],
    "Custom": ["CustomAttribute%d" % n for n in range(1, 16)] + ["ExtensionCustomAttribute%d" % n for n in range(1, 6)],
    "Delivery": ["AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers", "AcceptMessagesOnlyFromSendersOrMembers",
                 "DeliverToMailboxAndForward", "ForwardingAddress", "ForwardingSmtpAddress", "GrantSendOnBehalfTo",
                 "MaxReceiveSize", "MaxSendSize", "MessageCopyForSendOnBehalfEnabled", "MessageCopyForSentAsEnabled",
                 "RecipientLimits", "RejectMessagesFrom", "RejectMessagesFromDLMembers",
                 "RejectMessagesFromSendersOrMembers"],
    "Hold": ["ComplianceTagHoldApplied", "DelayHoldApplied", "DelayReleaseHoldApplied", "InPlaceHolds",
             "LitigationHoldDate", "LitigationHoldDuration", "LitigationHoldEnabled", "LitigationHoldOwner"],
    "Moderation": ["BypassModerationFromSendersOrMembers", "ModeratedBy", "ModerationEnabled",
                   "SendModerationNotifications"],
    "Move": ["MailboxMoveBatchName", "MailboxMoveFlags", "MailboxMoveRemoteHostName", "MailboxMoveSourceMDB",
             "MailboxMoveStatus", "MailboxMoveTargetMDB"],
    "Policy": ["AddressBookPolicy", "DataEncryptionPolicy", "EmailAddressPolicyEnabled", "ManagedFolderMailboxPolicy",
               "OwaMailboxPolicy", "PoliciesExcluded", "PoliciesIncluded", "RemoteAccountPolicy", "RetentionPolicy",
               "RoleAssignmentPolicy", "SharingPolicy", "ThrottlingPolicy"],
    "PublicFolder": ["DefaultPublicFolderMailbox", "EffectivePublicFolderMailbox", "IsExcludedFromServingHierarchy",
                     "IsHierarchyReady", "IsHierarchySyncEnabled", "IsRootPublicFolderMailbox"],
    "Quota": ["CalendarLoggingQuota", "IssueWarningQuota", "ProhibitSendQuota", "ProhibitSendReceiveQuota",
              "RecoverableItemsQuota", "RecoverableItemsWarningQuota", "RulesQuota", "UseDatabaseQuotaDefaults"],
    "Resource": ["ResourceCapacity", "ResourceCustom", "ResourceType", "RoomMailboxAccountEnabled"],
    "Retention": ["EndDateForRetentionHold", "RetainDeletedItemsFor", "RetainDeletedItemsUntilBackup",
                  "RetentionComment", "RetentionHoldEnabled", "RetentionPolicy", "RetentionUrl",
                  "SingleItemRecoveryEnabled", "StartDateForRetentionHold"],
    "SCL": ["AntispamBypassEnabled", "SCLDeleteEnabled", "SCLDeleteThreshold", "SCLJunkEnabled", "SCLJunkThreshold",
            "SCLQuarantineEnabled", "SCLQuarantineThreshold", "SCLRejectEnabled", "SCLRejectThreshold"],
    "SoftDelete": ["IncludeInGarbageCollection", "InactiveMailboxRetireTime", "IsInactiveMailbox",
                   "IsSoftDeletedByDisable", "IsSoftDeletedByRemove", "WhenSoftDeleted"],
    "StatisticsSeed": ["ArchiveDatabaseGuid", "DatabaseGuid", "ExchangeGuid"],
}
for _name, _members in PROPERTY_SETS.items():
    if _name != "Minimum":
        _members.append("ExternalDirectoryObjectId")
ALL_PROPERTY_SET = "All"

# Byte quantities "99 GB (106,300,440,576 bytes)" (reference §6, the module's own regex) and .NET timespans
# "90.00:00:00" / "01:30:00".
_BYTES_RE = re.compile(r"^\S{0,14}\d ?[KMGT]?B \(([\d,.]+) bytes\)$")
_TIMESPAN_RE = re.compile(r"^(?:(-)?(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")
# Properties whose value may be "Unlimited" instead of a size or a timespan.
SIZE_PROPERTIES = frozenset(
    ["ProhibitSendQuota", "ProhibitSendReceiveQuota", "IssueWarningQuota", "RecoverableItemsQuota",
     "RecoverableItemsWarningQuota", "ArchiveQuota", "ArchiveWarningQuota", "MaxSendSize", "MaxReceiveSize",
     "RulesQuota", "CalendarLoggingQuota"])
TIMESPAN_PROPERTIES = frozenset(["AuditLogAgeLimit", "RetainDeletedItemsFor", "LitigationHoldDuration"])


def parse_bytes(value):
    """"99 GB (106,300,440,576 bytes)" -> 106300440576; anything else -> None."""
    if not isinstance(value, str):
        return None
    match = _BYTES_RE.match(value.strip())
    if not match:
        return None
    return int(match.group(1).replace(",", "").replace(".", ""))


def parse_timespan(value):
    """"90.00:00:00" -> 7776000 (seconds); anything else -> None."""
    if not isinstance(value, str):
        return None
    match = _TIMESPAN_RE.match(value.strip())
    if not match:
        return None
    sign, days, hours, minutes, seconds = match.group(1), int(match.group(2) or 0), int(match.group(3)), \
        int(match.group(4)), int(match.group(5))
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    return -total if sign else total


def add_numeric_values(item):
    """Give byte-quantity and timespan display strings a number next to them (``X_bytes``, ``X_seconds``).

    "Unlimited" becomes ``None`` for the properties known to hold sizes or timespans.
    """
    extra = {}
    for key, value in item.items():
        if not isinstance(value, str):
            continue
        number = parse_bytes(value)
        if number is not None or (key in SIZE_PROPERTIES and value == "Unlimited"):
            extra[key + "_bytes"] = number
            continue
        number = parse_timespan(value)
        if number is not None or (key in TIMESPAN_PROPERTIES and value == "Unlimited"):
            extra[key + "_seconds"] = number
    item.update(extra)
    return item


class SharedValues:
    """Lets equal string values of a property share one object across a long list of results.

    Many properties repeat in every mailbox (OrganizationId, ExchangeVersion, RecipientTypeDetails...);
    each page's JSON decodes them into new strings, which is most of what a 100,000-mailbox list holds.
    A property stops being shared once it shows more than ``limit`` distinct values (names, GUIDs).
    """

    def __init__(self, limit=256):
        self.limit = limit
        self._memo = {}
        self._skip = set()

    def share(self, item):
        for key, value in item.items():
            if key in self._skip or value.__class__ is not str:
                continue
            memo = self._memo.get(key)
            if memo is None:
                memo = self._memo[key] = {}
            shared = memo.get(value)
            if shared is None:
                if len(memo) >= self.limit:
                    self._skip.add(key)
                    del self._memo[key]
                    continue
                memo[value] = value
            else:
                item[key] = shared
        return item


def strip_annotations(item):
    """Drop the OData annotation keys (``Prop@odata.type``, ``Prop@data.type``; reference §6)."""
    if isinstance(item, dict):
        return dict((k, v) for k, v in item.items() if "@" not in k)
    return item


def encode_parameters(parameters):
    """Cmdlet parameters as the service expects them (reference §5); ExoConfigError on a bad name."""
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise ExoConfigError("parameters must be a dictionary of cmdlet parameter names to values.")
    out = {}
    for name, value in parameters.items():
        name = str(name)
        if name.startswith("-"):
            name = name[1:]
        if not _PARAMETER_RE.match(name):
            raise ExoConfigError("parameters: '%s' is not a cmdlet parameter name (letters and digits, as in "
                                 "ResultSize or Identity)." % name)
        out[name] = _encode_value(value)
    return out


def _encode_value(value):
    if isinstance(value, dict):
        encoded = dict((str(k), _encode_value(v)) for k, v in value.items())
        encoded.setdefault("@odata.type", HASHTABLE_TYPE)
        return encoded
    if isinstance(value, (list, tuple)):
        return [_encode_value(v) for v in value]
    return value


def normalize_result_size(value, option="result_size"):
    """An int >= 1 or 'unlimited' (any case) -> int or the wire value "Unlimited"; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ExoConfigError("%s must be a positive integer or 'unlimited', not a boolean." % option)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if text.lower() == "unlimited":
            return "Unlimited"
        if not text.isdigit():
            raise ExoConfigError("%s must be a positive integer or 'unlimited', got '%s'." % (option, text))
        number = int(text)
    if number < 1:
        raise ExoConfigError("%s must be at least 1 (or 'unlimited'), got %d." % (option, number))
    return number


def parse_error(response):
    """(message, error_id, exception_type, code) from an error response (reference §8), defensively."""
    text = ""
    try:
        text = response.text or ""
    except Exception:  # pylint: disable=broad-except
        text = ""
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        doc = None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        snippet = re.sub(r"<[^>]+>", " ", text)
        snippet = re.sub(r"\s+", " ", snippet).strip()[:300]
        return snippet or "<empty body>", None, None, None
    code = error.get("code")
    details = error.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict) and details[0].get("message"):
        parts = str(details[0]["message"]).split("|", 2)
        if len(parts) == 3:
            return parts[2].strip(), parts[0].strip() or None, parts[1].strip() or None, code
        return parts[-1].strip(), None, None, code
    inner = error.get("innererror") or {}
    internal = inner.get("internalexception") if isinstance(inner, dict) else None
    if isinstance(internal, dict) and internal.get("message"):
        return str(internal["message"]), None, inner.get("type"), code
    return str(error.get("message") or code or "unknown error"), None, None, code


class ExoClient:
    """Runs cmdlets through InvokeCommand. ``invoke`` is a generator over the result objects."""

    def __init__(self, http, auth, base_uri, tenant, anchor_mailbox, warn=None, page_size=1000):
        if not tenant:
            raise ExoConfigError("organization is required to call Exchange Online: give the tenant's "
                                 ".onmicrosoft.com domain or its tenant GUID.")
        self.http = http
        self.auth = auth
        self.base_uri = base_uri.rstrip("/")
        self.tenant = tenant
        self.anchor_mailbox = anchor_mailbox
        self.warn = warn
        self.page_size = max(1, min(MAX_PAGE_SIZE, int(page_size or MAX_PAGE_SIZE)))
        self.connection_id = str(uuid.uuid4())
        self.warnings = []
        self.truncated = False
        self.pages = 0
        self._base_host = urlsplit(self.base_uri).netloc.lower()

    @property
    def url(self):
        return self.base_uri + API_PATH % quote(self.tenant, safe="")

    def headers(self, cmdlet):
        # Reference §3: the minimal working set plus the optional ones the module itself sends.
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-AnchorMailbox": self.anchor_mailbox,
            "X-ResponseFormat": "json",
            "Prefer": "odata.maxpagesize=%d" % self.page_size,
            "X-CmdletName": cmdlet,
            "connection-id": self.connection_id,
            "client-request-id": str(uuid.uuid4()),
        }

    def invoke(self, cmdlet, parameters=None, result_size=None, select=None):
        """Run a cmdlet; yields result objects (annotations removed), page by page.

        ``result_size``: None (the cmdlet's default), an int, or "unlimited"; the generator never yields more.
        ``select``: property names for ``$select``. After the generator ends, ``warnings`` holds the server's
        warnings and ``truncated`` says whether ResultSize cut the list.
        """
        if not isinstance(cmdlet, str) or not _CMDLET_RE.match(cmdlet.strip()):
            raise ExoConfigError("cmdlet must be a cmdlet name in Verb-Noun form (for example Get-Mailbox), got '%s'."
                                 % cmdlet)
        cmdlet = cmdlet.strip()
        params = encode_parameters(parameters)
        limit = normalize_result_size(result_size)
        if limit is not None:
            params["ResultSize"] = limit
        query = None
        if select:
            names = []
            for name in select:
                if not _PROPERTY_RE.match(str(name)):
                    raise ExoConfigError("'%s' is not a property name." % name)
                if name not in names:
                    names.append(name)
            query = {"$select": ",".join(names)}
        body = json.dumps({"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}, separators=(",", ":"))
        self.truncated = False
        self.pages = 0
        return self._pages(cmdlet, body, query, limit if isinstance(limit, int) else None)

    def _pages(self, cmdlet, body, query, limit):
        url = self.url
        count = 0
        while url:
            doc = self._post(cmdlet, url, body, query)
            self.pages += 1
            query = None  # the nextLink carries its own query string
            for message in doc.get("@adminapi.warnings") or []:
                self._warning(message)
            items = doc.get("value")
            if items is None:
                items = []
            elif not isinstance(items, list):
                items = [items]
            url = doc.get("@odata.nextLink")
            del doc
            # Hand items out one at a time and let go of each, so at most one page is held.
            items.reverse()
            while items:
                if limit is not None and count >= limit:
                    if items or url:
                        self.truncated = True
                    return
                count += 1
                yield strip_annotations(items.pop())
            if url and limit is not None and count >= limit:
                self.truncated = True
                return
            if url:
                self._check_next_link(url)

    def _warning(self, message):
        message = str(message)
        if message in self.warnings:
            return
        self.warnings.append(message)
        if _TRUNCATION_RE.search(message):
            self.truncated = True
            return
        if self.warn is not None:
            self.warn("Exchange Online: %s" % message)

    def _check_next_link(self, url):
        """Follow nextLinks on the service's own host only: the request carries the bearer token."""
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.netloc.lower() != self._base_host:
            raise ExoHttpError("Exchange Online returned a next-page link to another host (%s); refusing to send the "
                               "token there." % strip_query(url))

    def _post(self, cmdlet, url, body, query):
        attempt = 0
        while True:
            try:
                response = self.http.request("POST", url, headers=self.headers(cmdlet), data=body, params=query,
                                             auth=self.auth)
            except ExoHttpError as exc:
                # The whole call fails: callers never see part of a list.
                details = dict(exc.details, cmdlet=cmdlet, page=self.pages + 1)
                raise ExoHttpError("%s failed on page %d: %s" % (cmdlet, self.pages + 1, exc.message),
                                   status=exc.status, code=exc.code, details=details)
            status = response.status_code
            if 200 <= status < 300:
                return self._json(response, url)
            message, error_id, exception_type, code = parse_error(response)
            response.close()
            transient = exception_type and exception_type.rsplit(".", 1)[-1] in RETRYABLE_EXCEPTIONS
            if (transient or CONCURRENCY_TEXT in message) and attempt < self.http.max_retries:
                self.http.retries += 1
                self.http.sleep(self.http.backoff(attempt))
                attempt += 1
                continue
            raise self._error(cmdlet, status, message, error_id, exception_type, code)

    def _json(self, response, url):
        if response.status_code == 204 or not response.content:
            return {}
        try:
            doc = response.json()
        except ValueError:
            raise ExoHttpError("Exchange Online answered %s with HTTP %d but the body is not JSON (%s); a proxy or "
                               "a service outage page may be in the way." % (
                                   strip_query(url), response.status_code,
                                   response.headers.get("Content-Type", "no content type")),
                               status=response.status_code)
        finally:
            response.close()
        if not isinstance(doc, dict):
            raise ExoHttpError("Exchange Online answered %s with a JSON body that is not an object." % strip_query(url),
                               status=response.status_code)
        return doc

    def _error(self, cmdlet, status, message, error_id, exception_type, code):
        message = self.http.redact(message)
        details = {"cmdlet": cmdlet}
        if error_id:
            details["error_id"] = error_id
        if exception_type:
            details["exception_type"] = exception_type
        reason = message.rstrip(". ")
        if status == 401:
            return ExoAuthError(
                "Exchange Online refused the access token for %s (HTTP 401): %s. App-only sign-in needs the "
                "Exchange.ManageAsApp application permission of Office 365 Exchange Online with admin consent, "
                "and the token must be for this organization." % (cmdlet, reason),
                status=status, code=code, details=details)
        if status == 403:
            return ExoAuthError(
                "Exchange Online denied %s (HTTP 403): %s. Assign an Exchange directory role (for example Exchange "
                "Administrator) to the app's service principal or the signed-in user." % (cmdlet, reason),
                status=status, code=code, details=details)
        return ExoServiceError("%s failed: %s" % (cmdlet, message), status=status, code=code, details=details,
                               error_id=error_id, exception_type=exception_type)

    def discover_scc_base(self, scc_uri):
        """The regional Security & Compliance origin the generic host redirects to (reference §10), or None."""
        base = scc_uri.rstrip("/")
        url = base + "/adminapi/beta/%s/EXOBanner('AutogenSession')" % quote(self.tenant, safe="")
        response = self.http.request("GET", url, params={"Version": "3.7.1"}, headers={"Accept": "application/json"},
                                     auth=self.auth, allow_redirects=False)
        status = response.status_code
        location = response.headers.get("Location")
        if status in (401, 403):
            message, error_id, exception_type, code = parse_error(response)
            response.close()
            raise self._error("Connect-IPPSSession", status, message, error_id, exception_type, code)
        response.close()
        if status not in (301, 302, 303, 307, 308) or not location:
            return None
        parts = urlsplit(location)
        if parts.scheme != "https" or not parts.hostname:
            return None
        host = parts.hostname.lower()
        # Monkey365 / Go client: the redirect may name <region>.admin.protection.outlook.com:446; the REST
        # endpoint is <region>.ps.compliance.protection.outlook.com on 443.
        host = host.replace(".admin.protection.", ".ps.compliance.protection.")
        port = parts.port
        if port in (None, 443, 446):
            return "https://%s" % host
        return "https://%s:%d" % (host, port)
