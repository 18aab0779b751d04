# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exchange Online REST (InvokeCommand) and Security & Compliance, as the collection uses them.

Wire format (reference exchange-online-rest.md):
- §1/§2: ``POST /adminapi/beta/{tenant}/InvokeCommand`` with ``{"CmdletInput": {"CmdletName", "Parameters"}}``;
  ``{tenant}`` is the tenant GUID or a domain of the tenant.
- §3/§4: ``Authorization: Bearer`` and ``X-AnchorMailbox`` (``UPN:``/``APP:``/``SMTP:``/``MBX:``) are required here.
- §6: 200 ``{"@odata.context", "adminapi.warnings@odata.type", "@adminapi.warnings": [...], "value": [...]}``;
  every item carries annotation keys (``Guid@data.type``...); byte sizes and timespans as display strings.
- §7: page size from ``Prefer: odata.maxpagesize=N`` (default and max 1000); more results -> an absolute
  ``@odata.nextLink`` with an opaque ``$skiptoken`` that the client re-POSTs with the same body.
- §8: errors ``{"error": {"code", "message": "Error executing cmdlet", "details": [{"code", "target",
  "message": "<id>|<ExceptionType>|<text>"}], "innererror": {...}}}`` plus an ``X-ExceptionType`` header.
- §10: the generic Security & Compliance host answers with a 302 to the regional host.
- §12: app-only tokens need the ``Exchange.ManageAsApp`` role (else 401) and an Exchange-capable directory
  role in ``wids`` (else 403, RBAC).
- §15: Get-Mailbox parameters, default ResultSize 1000, OPATH filter subset, ``$select`` projection.

Control routes (forwarded by the control API for paths under ``/exchange/``):
- ``GET /exchange/mailboxes/<identity>`` -> the mailbox's current state (every property, no annotations)
- ``GET /exchange/overrides`` -> ``{"<index>": {property: value}}`` (what Set-Mailbox changed)
- ``POST /exchange/reset`` -> forget every Set-Mailbox change
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from urllib.parse import quote, unquote

from . import tenant as tenantlib
from .core import BadRequest, Response, Service, TokenRejected

PATH_RE = re.compile(r"^/adminapi/(?:beta|v1\.0)/([^/]+)/invokecommand$", re.IGNORECASE)
MAX_PAGE = 1000
DEFAULT_RESULT_SIZE = 1000
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"

# Directory roles Exchange builds a session's RBAC from (ref §12, app-only-auth-powershell-v2.md).
EXCHANGE_WRITE_ROLES = {
    "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
    "31392ffb-586c-42d1-9346-e59415a2cc4e",  # Exchange Recipient Administrator
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
    "17315797-102d-40b4-93e0-432062caca18",  # Compliance Administrator
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
}
EXCHANGE_READ_ROLES = {
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
    "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
}

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
COMMON_PARAMETERS = ("ErrorAction", "WarningAction", "ErrorVariable", "WarningVariable", "Verbose", "Debug",
                     "OutVariable", "OutBuffer", "InformationAction", "PipelineVariable")

WARN_DEFAULT_RESULT_SIZE = (
    "By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the number of items "
    "returned. To return all items, specify \"-ResultSize Unlimited\". Be aware that, depending on the actual number "
    "of items, returning all items can take a long time and consume a large amount of memory. Also, we don't "
    "recommend storing the results in a variable. Instead, pipe the results to another task or script to perform "
    "batch operations.")
WARN_MORE_RESULTS = ("There are more results available than are currently displayed. To view them, increase the "
                     "value for the ResultSize parameter.")
WARN_NO_CHANGE = "The command completed successfully but no settings of '%s' have been modified."
DC_NAME = "AM6PR07A001DC01.EURPR07A001.prod.outlook.com"


class CmdletError(Exception):
    """A cmdlet failure, answered in the §8 shape."""

    def __init__(self, status, error_id, exception_type, text, code="BadRequest"):
        super().__init__(text)
        self.status = status
        self.error_id = error_id
        self.exception_type = exception_type
        self.text = text
        self.code = code


def not_found(identity):
    return CmdletError(404, "Ex6F9304", "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                       "The operation couldn't be performed because object '%s' couldn't be found on '%s'."
                       % (identity, DC_NAME), code="NotFound")


def not_recognized(name):
    return CmdletError(400, "CommandNotFoundException", "System.Management.Automation.CommandNotFoundException",
                       "The term '%s' is not recognized as a name of a cmdlet, function, script file, or executable "
                       "program. Check the spelling of the name, or if a path was included, verify that the path is "
                       "correct and try again." % name)


def binding_error(text, error_id="ParameterArgumentTransformationError"):
    return CmdletError(400, error_id, "System.Management.Automation.ParameterBindingException", text)


def conversion_error(param, value, type_name, detail=None):
    text = "Cannot process argument transformation on parameter '%s'. Cannot convert value \"%s\" to type \"%s\"." % (
        param, value, type_name)
    if detail:
        text += " Error: \"%s\"" % detail
    return binding_error(text)


def _bool(param, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise binding_error("Cannot process argument transformation on parameter '%s'. Cannot convert value "
                        "\"System.String\" to type \"System.Boolean\". Boolean parameters accept only Boolean "
                        "values and numbers, such as $True, $False, 1 or 0." % param)


def _result_size(value):
    """ResultSize: an integer or "Unlimited" (ref §5); returns None for unlimited."""
    if isinstance(value, bool):
        raise conversion_error("ResultSize", value, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]")
    if isinstance(value, int) and value > 0:
        return value
    text = str(value).strip()
    if text.lower() == "unlimited":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise conversion_error("ResultSize", value, "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
                           "Invalid input format")


def _string_list(param, value):
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise conversion_error(param, value, "System.String[]")


_NOTES = {key: dict(notes) for key, notes in tenantlib.ANNOTATIONS.items()}


def _annotate(item):
    """Add the service's annotation keys next to each property (ref §6)."""
    out = {}
    notes = _NOTES
    for key, value in item.items():
        extra = notes.get(key)
        if extra is not None:
            out.update(extra)
        out[key] = value
    return out


def _skiptoken(data):
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode("utf-8")).decode("ascii").rstrip("=")


def _read_skiptoken(text):
    try:
        padded = text + "=" * (-len(text) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict):
            raise ValueError(text)
        return data
    except (ValueError, TypeError):
        raise BadRequest("The $skiptoken is not valid.") from None


class Page:
    """The output of one InvokeCommand call: items, warnings, and the next position when more follow."""

    def __init__(self, items, warnings=None, next_state=None):
        self.items = items
        self.warnings = warnings or []
        self.next_state = next_state


class Call:
    """One InvokeCommand request after validation."""

    def __init__(self, service, req, tenant, claims, cmdlet, params, page_size, state, select):
        self.service = service
        self.req = req
        self.tenant = tenant
        self.claims = claims
        self.cmdlet = cmdlet
        self.params = params
        self.page_size = page_size
        self.state = state
        self.select = select


def _param_map(allowed):
    return {name.lower(): name for name in tuple(allowed) + COMMON_PARAMETERS}


def bind(call, allowed):
    """Canonical parameter names; an unknown one fails like PowerShell's parameter binder."""
    names = _param_map(allowed)
    out = {}
    for key, value in call.params.items():
        name = names.get(str(key).lower())
        if name is None:
            raise binding_error("A parameter cannot be found that matches parameter name '%s'." % key,
                                "NamedParameterNotFound")
        if name not in COMMON_PARAMETERS:
            out[name] = value
    return out


class _BaseService(Service):
    """What the Exchange host and the Security & Compliance regional host share."""

    audience_service = "exchange"

    def __init__(self, sim):
        self.sim = sim
        self.cmdlets = {}

    def claims(self, req):
        return req.path.lower().startswith("/adminapi/")

    # -- request validation ----------------------------------------------------------------------
    def _authorize(self, req, tenant_segment):
        claims = self.sim.tokens.verify(req.headers.get("Authorization"), self.sim.audiences(self.audience_service))
        directory = self.sim.directory
        path_tid = directory.tenant_id(tenant_segment) if directory is not None else None
        if path_tid is None and tenant_segment.lower() in (self.sim.tenant_id.lower(), self.sim.organization.lower()):
            path_tid = self.sim.tenant_id
        if path_tid is None:
            raise TokenRejected(401, "invalid_tenant", "The tenant '%s' is not known." % tenant_segment)
        if str(claims.get("tid", "")).lower() != path_tid.lower() and not self._partner(claims, path_tid):
            raise TokenRejected(401, "invalid_tenant",
                                "The access token was issued for another tenant than '%s'." % tenant_segment)
        app_only = claims.get("idtyp") == "app" or ("scp" not in claims and "upn" not in claims
                                                    and "unique_name" not in claims)
        if app_only and "Exchange.ManageAsApp" not in (claims.get("roles") or []):
            # The service refuses an app token without the application permission as unauthorized (ref §8, §12).
            raise TokenRejected(401, "invalid_token",
                                "The token does not grant the Exchange.ManageAsApp application permission; "
                                "add it to the app registration and grant admin consent.")
        wids = {str(w).lower() for w in (claims.get("wids") or [])}
        if app_only and not wids & (EXCHANGE_WRITE_ROLES | EXCHANGE_READ_ROLES):
            raise CmdletError(403, "UnAuthorized", "Microsoft.Exchange.Management.PSDirectInvoke.UnauthorizedAccessException",
                              "The role assigned to application %s isn't supported in this scenario. Please check "
                              "online documentation for assigning correct Directory Roles to Azure AD Application for "
                              "EXO App-Only Authentication." % claims.get("appid", claims.get("azp", "")),
                              code="Forbidden")
        return claims, path_tid

    def _partner(self, claims, path_tid):
        """A delegated admin of a partner tenant may manage the customer tenant (delegated_organization)."""
        directory = self.sim.directory
        user = directory.user_by_upn(claims.get("upn")) if directory is not None and claims.get("upn") else None
        return user is not None and path_tid.lower() in {t.lower() for t in user.partner_tenants}

    @staticmethod
    def _page_size(req):
        prefer = req.headers.get("Prefer") or ""
        match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer, re.IGNORECASE)
        if not match:
            return MAX_PAGE, False
        size = int(match.group(1))
        return (min(size, MAX_PAGE) if size > 0 else MAX_PAGE), True

    def tenant_for(self, tid):
        """The data of a tenant (the Exchange host keeps a Tenant per tenant id)."""
        return tid

    def handle(self, req):
        match = PATH_RE.match(req.path)
        if not match:
            return None
        if req.method != "POST":
            return self.error_response(405, "MethodNotAllowed", "InvokeCommand accepts POST only.")
        segment = unquote(match.group(1))
        try:
            claims, tid = self._authorize(req, segment)
        except CmdletError as exc:
            return self._cmdlet_error(exc)
        anchor = (req.headers.get("X-AnchorMailbox") or "").strip()
        if not anchor:
            return self.error_response(400, "BadRequest", "The X-AnchorMailbox header is required: 'UPN:<admin UPN>' "
                                       "for delegated tokens, 'UPN:%s@<tenant>' for app-only tokens." % SYSTEM_MAILBOX)
        if not re.match(r"^(UPN|APP|SMTP|MBX|OID|SID|PUID):.+", anchor, re.IGNORECASE):
            return self.error_response(400, "BadRequest", "The X-AnchorMailbox header '%s' is not a routing hint." % anchor)
        body = req.json()
        cmdlet_input = body.get("CmdletInput") if isinstance(body, dict) else None
        if not isinstance(cmdlet_input, dict) or not isinstance(cmdlet_input.get("CmdletName"), str) \
                or not cmdlet_input["CmdletName"].strip():
            return self.error_response(400, "BadRequest", "The request body must be {\"CmdletInput\": {\"CmdletName\": "
                                       "\"<cmdlet>\", \"Parameters\": {...}}}.")
        params = cmdlet_input.get("Parameters")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return self.error_response(400, "BadRequest", "CmdletInput.Parameters must be a JSON object.")
        name = cmdlet_input["CmdletName"].strip()
        entry = self.cmdlets.get(name.lower())
        self.sim.counters.incr("invoke_command", entry[0] if entry else name)
        state = None
        if "$skiptoken" in req.query:
            state = _read_skiptoken(req.query["$skiptoken"])
            if state.get("h") != self._body_hash(req.body):
                raise BadRequest("The $skiptoken belongs to another request; re-POST the same body to the nextLink.")
        select = None
        if req.query.get("$select"):
            select = [s.strip() for s in req.query["$select"].split(",") if s.strip()]
        page_size, preferred = self._page_size(req)
        tenant = self.tenant_for(tid)
        call = Call(self, req, tenant, claims, entry[0] if entry else name, params, page_size, state, select)
        try:
            if entry is None or not self._allowed(claims, entry):
                raise not_recognized(name)
            page = entry[1](call)
        except CmdletError as exc:
            return self._cmdlet_error(exc)
        return self._page_response(req, segment, page, page_size if preferred else None)

    @staticmethod
    def _allowed(claims, entry):
        """Read-only roles do not see write cmdlets at all, as Exchange RBAC hides them."""
        if not entry[2]:
            return True
        return bool({str(w).lower() for w in (claims.get("wids") or [])} & EXCHANGE_WRITE_ROLES)

    @staticmethod
    def _body_hash(body):
        return hashlib.sha256(body).hexdigest()[:16]

    def _page_response(self, req, segment, page, preferred):
        doc = {
            "@odata.context": "%s/adminapi/beta/%s/$metadata#Collection(Exchange.GenericHashTable)" % (req.origin, segment),
            "adminapi.warnings@odata.type": "#Collection(String)",
            "@adminapi.warnings": page.warnings,
            "value": page.items,
        }
        if page.next_state is not None:
            state = dict(page.next_state, h=self._body_hash(req.body))
            query = "$skiptoken=" + _skiptoken(state)
            if req.query.get("$select"):
                query = "$select=%s&%s" % (quote(req.query["$select"], safe=","), query)
            doc["@odata.nextLink"] = "%s%s?%s" % (req.origin, req.path, query)
        headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", "request-id": str(uuid.uuid4()),
                   "Rate-Limit-Limit": "30000", "Rate-Limit-Remaining": "29990",
                   "X-CalculatedBETarget": "AM6PR07MB8842.eurprd07.PROD.OUTLOOK.COM"}
        if preferred is not None:
            headers["Preference-Applied"] = "odata.maxpagesize=%d" % preferred
        return Response(200, json.dumps(doc, separators=(",", ":")).encode("utf-8"), headers)

    def _cmdlet_error(self, exc):
        body = {"error": {
            "code": exc.code,
            "message": "Error executing cmdlet",
            "details": [{"code": "Client", "target": "",
                         "message": "%s|%s|%s" % (exc.error_id, exc.exception_type, exc.text)}],
            "innererror": {"message": "Error executing cmdlet",
                           "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                           "stacktrace": ""},
        }}
        return Response(exc.status, json.dumps(body).encode("utf-8"),
                        {"Content-Type": JSON_TYPE, "X-ExceptionType": exc.exception_type.rsplit(".", 1)[-1],
                         "request-id": str(uuid.uuid4())})

    # -- listing helpers -------------------------------------------------------------------------
    @staticmethod
    def fixed_list(call, rows, identity=None, identity_keys=("Identity", "Name")):
        """A small list (org config, domains, SCC policies): Identity lookup, $select, paging."""
        if identity is not None:
            low = str(identity).lower()
            rows = [r for r in rows if any(str(r.get(k, "")).lower() == low for k in identity_keys)]
            if not rows:
                raise not_found(identity)
        start = int((call.state or {}).get("p", 0))
        chunk = rows[start:start + call.page_size]
        items = [_annotate(project(r, call.select)) for r in chunk]
        nxt = {"p": start + len(chunk)} if start + len(chunk) < len(rows) else None
        return Page(items, next_state=nxt)


def project(item, select):
    if not select:
        return item
    out = {}
    for name in select:
        canon = name if name in item else next((k for k in item if k.lower() == name.lower()), None)
        if canon is not None:
            out[canon] = item[canon]
    return out


class ExchangeService(_BaseService):
    """Exchange Online REST on +0 (after Entra ID)."""

    name = "exchange"
    audience_service = "exchange"

    def __init__(self, sim):
        super().__init__(sim)
        self.tenants = {}
        self.cmdlets = {
            "get-organizationconfig": ("Get-OrganizationConfig", self.get_organization_config, False),
            "get-accepteddomain": ("Get-AcceptedDomain", self.get_accepted_domain, False),
            "get-mailbox": ("Get-Mailbox", self.get_mailbox, False),
            "get-recipient": ("Get-Recipient", self.get_recipient, False),
            "set-mailbox": ("Set-Mailbox", self.set_mailbox, True),
        }

    def tenant_for(self, tid):
        tenant = self.tenants.get(tid.lower())
        if tenant is None:
            organization, count = self.sim.organization, self.sim.mailboxes
            if tid.lower() != self.sim.tenant_id.lower():
                organization, count = self._organization_of(tid), 50
            tenant = tenantlib.Tenant(self.sim.seed, organization, count, tid)
            self.tenants[tid.lower()] = tenant
        return tenant

    def _organization_of(self, tid):
        known = self.sim.directory.tenant(tid) if self.sim.directory is not None else None
        return known.name if known is not None else "tenant-%s.onmicrosoft.com" % tid[:8]

    # -- simple cmdlets --------------------------------------------------------------------------
    def get_organization_config(self, call):
        bind(call, ("Identity",))
        return self.fixed_list(call, [tenantlib.organization_config(call.tenant, call.tenant.tenant_id)])

    def get_accepted_domain(self, call):
        params = bind(call, ("Identity",))
        return self.fixed_list(call, tenantlib.accepted_domains(call.tenant), params.get("Identity"),
                               ("Identity", "Name", "DomainName"))

    # -- Get-Mailbox / Get-Recipient -------------------------------------------------------------
    def get_mailbox(self, call):
        params = bind(call, ("Identity", "Filter", "ResultSize", "RecipientTypeDetails", "Anr", "Archive",
                             "SoftDeletedMailbox", "InactiveMailboxOnly", "IncludeInactiveMailbox", "PublicFolder",
                             "GroupMailbox", "Migration", "OrganizationalUnit"))
        return self._list_mailboxes(call, params, None)

    def get_recipient(self, call):
        params = bind(call, ("Identity", "Filter", "ResultSize", "RecipientTypeDetails", "RecipientType", "Anr",
                             "IncludeSoftDeletedRecipients", "OrganizationalUnit"))
        return self._list_mailboxes(call, params, tenantlib.RECIPIENT_PROPERTIES)

    def _properties(self, call, default):
        """The properties to build: $select (canonical names known to the tenant) or the cmdlet's default."""
        if call.select:
            names = []
            for name in call.select:
                canon = tenantlib.canonical_property(name)
                if canon is not None and canon not in names:
                    names.append(canon)
            return tuple(names)
        return default

    def _list_mailboxes(self, call, params, default_properties):
        tenant = call.tenant
        properties = self._properties(call, default_properties)
        if "Identity" in params and ("Filter" in params or "Anr" in params):
            raise binding_error("Parameter set cannot be resolved using the specified named parameters.",
                                "AmbiguousParameterSet")
        if params.get("SoftDeletedMailbox") or params.get("InactiveMailboxOnly"):
            return Page([])  # the simulated tenant has no soft-deleted or inactive mailboxes
        if "Identity" in params:
            index = tenant.find(params["Identity"])
            if index is None:
                raise not_found(params["Identity"])
            return Page([_annotate(tenant.mailbox(index, properties))])
        explicit = "ResultSize" in params
        limit = _result_size(params["ResultSize"]) if explicit else DEFAULT_RESULT_SIZE
        types = None
        if params.get("RecipientTypeDetails") is not None:
            wanted = _string_list("RecipientTypeDetails", params["RecipientTypeDetails"])
            known = {t.lower(): t for t in tenantlib.RECIPIENT_TYPE_DETAILS}
            for value in wanted:
                if value.lower() not in known:
                    raise conversion_error("RecipientTypeDetails", value,
                                           "Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails",
                                           "Unable to match the identifier name %s to a valid enumerator name. "
                                           "Specify one of the following enumerator names and try again: %s"
                                           % (value, ", ".join(tenantlib.RECIPIENT_TYPE_DETAILS)))
            types = {known[v.lower()] for v in wanted}
        tree = None
        filter_props = ()
        if params.get("Filter") not in (None, ""):
            try:
                tree = tenantlib.parse_filter(params["Filter"])
            except tenantlib.FilterError as exc:
                raise binding_error(str(exc) if str(exc).startswith("Cannot bind") else
                                    "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": "
                                    "\"%s\"" % exc, "ParameterBindingFailed")
            filter_props = tuple(tenantlib.filter_properties(tree))
        anr = str(params["Anr"]).lower() if params.get("Anr") not in (None, "") else None
        if anr:
            filter_props = tuple(set(filter_props) | {"Alias", "DisplayName", "PrimarySmtpAddress", "Name"})

        def matches(index):
            if types is not None and tenant.kind(index) not in types:
                return False
            if not filter_props:
                return True
            item = tenant.mailbox(index, filter_props)
            if tree is not None and not tenantlib.evaluate(tree, item):
                return False
            if anr and not any(str(item[k]).lower().startswith(anr) for k in ("Alias", "DisplayName", "Name")) \
                    and not str(item["PrimarySmtpAddress"]).lower().startswith(anr):
                return False
            return True

        state = call.state or {}
        position, emitted = int(state.get("p", 0)), int(state.get("n", 0))
        items = []
        count = tenant.count
        room = call.page_size if limit is None else min(call.page_size, limit - emitted)
        index = position
        while index < count and len(items) < room:
            if matches(index):
                items.append(_annotate(tenant.mailbox(index, properties)))
            index += 1
        emitted += len(items)
        # Is there another match? Scan on lazily (stops at the first one).
        while index < count and not matches(index):
            index += 1
        more = index < count
        if not more:
            return Page(items)
        if limit is not None and emitted >= limit:
            return Page(items, [WARN_MORE_RESULTS if explicit else WARN_DEFAULT_RESULT_SIZE])
        return Page(items, next_state={"p": index, "n": emitted})

    # -- Set-Mailbox -----------------------------------------------------------------------------
    SIZE_PARAMS = ("ProhibitSendQuota", "ProhibitSendReceiveQuota", "IssueWarningQuota", "RecoverableItemsQuota",
                   "RecoverableItemsWarningQuota", "ArchiveQuota", "ArchiveWarningQuota", "MaxSendSize",
                   "MaxReceiveSize", "RulesQuota", "CalendarLoggingQuota")
    BOOL_PARAMS = ("UseDatabaseQuotaDefaults", "AuditEnabled", "LitigationHoldEnabled", "DeliverToMailboxAndForward",
                   "HiddenFromAddressListsEnabled", "SingleItemRecoveryEnabled", "RetainDeletedItemsUntilBackup",
                   "MessageCopyForSentAsEnabled", "MessageCopyForSendOnBehalfEnabled", "ModerationEnabled",
                   "RetentionHoldEnabled")
    TIMESPAN_PARAMS = ("AuditLogAgeLimit", "RetainDeletedItemsFor")
    STRING_PARAMS = ("DisplayName", "Office", "RetentionPolicy", "RetentionComment", "RetentionUrl") + tuple(
        "CustomAttribute%d" % n for n in range(1, 16))
    LIST_PARAMS = ("EmailAddresses", "GrantSendOnBehalfTo", "AuditAdmin", "AuditDelegate", "AuditOwner")
    TYPES = {"regular": "UserMailbox", "shared": "SharedMailbox", "room": "RoomMailbox", "equipment": "EquipmentMailbox"}

    def set_mailbox(self, call):
        allowed = (("Identity", "ForwardingSmtpAddress", "ForwardingAddress", "LitigationHoldDuration", "Type",
                    "WhatIf", "Confirm", "Force") + self.SIZE_PARAMS + self.BOOL_PARAMS + self.TIMESPAN_PARAMS
                   + self.STRING_PARAMS + self.LIST_PARAMS)
        params = bind(call, allowed)
        if params.get("Identity") in (None, ""):
            raise binding_error("Cannot process command because of one or more missing mandatory parameters: Identity.",
                                "MissingMandatoryParameter")
        tenant = call.tenant
        index = tenant.find(params["Identity"])
        if index is None:
            raise not_found(params["Identity"])
        current = tenant.mailbox(index)
        changes = {}
        for name, value in params.items():
            if name in ("Identity", "WhatIf", "Confirm", "Force"):
                continue
            changes.update(self._set_value(tenant, current, name, value))
        real = {k: v for k, v in changes.items() if current.get(k) != v}
        identity = current["Identity"]
        if not real:
            return Page([], [WARN_NO_CHANGE % identity])
        if params.get("WhatIf") is True:
            return Page([])
        now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime())
        real.update({"WhenChanged": now, "WhenChangedUTC": now})
        tenant.set_override(index, real)
        self.sim.record_write("exchange", "Set-Mailbox", identity,
                              {"CmdletName": "Set-Mailbox", "Parameters": call.params})
        return Page([])

    def _set_value(self, tenant, current, name, value):
        if name in self.SIZE_PARAMS:
            try:
                return {name: tenantlib.format_bytes(tenantlib.parse_bytes(value))}
            except ValueError:
                raise conversion_error(name, value, "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data."
                                       "ByteQuantifiedSize]", "The value %s is not a valid size." % value) from None
        if name in self.BOOL_PARAMS:
            return {name: _bool(name, value)}
        if name in self.TIMESPAN_PARAMS:
            try:
                return {name: tenantlib.parse_timespan(value)}
            except ValueError:
                raise conversion_error(name, value, "Microsoft.Exchange.Data.EnhancedTimeSpan") from None
        if name == "LitigationHoldDuration":
            if str(value).lower() == "unlimited":
                return {name: "Unlimited"}
            try:
                return {name: tenantlib.parse_timespan(value)}
            except ValueError:
                raise conversion_error(name, value, "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data."
                                       "EnhancedTimeSpan]") from None
        if name in self.STRING_PARAMS:
            if value is not None and not isinstance(value, (str, int, float)):
                raise conversion_error(name, value, "System.String")
            return {name: None if value in (None, "") else str(value)}
        if name == "Type":
            kind = self.TYPES.get(str(value).lower())
            if kind is None:
                raise conversion_error("Type", value, "Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType",
                                       "Unable to match the identifier name %s to a valid enumerator name. Specify one "
                                       "of the following enumerator names and try again: Regular, Room, Equipment, "
                                       "Shared" % value)
            return {"RecipientTypeDetails": kind, "Type": str(value).capitalize(),
                    "IsShared": kind == "SharedMailbox", "IsResource": kind in ("RoomMailbox", "EquipmentMailbox")}
        if name == "ForwardingSmtpAddress":
            if value in (None, ""):
                return {name: None}
            text = str(value)
            if "@" not in text:
                raise conversion_error(name, value, "Microsoft.Exchange.Data.ProxyAddress",
                                       "The address '%s' is invalid." % text)
            return {name: "smtp:" + text.split(":", 1)[-1]}
        if name == "ForwardingAddress":
            if value in (None, ""):
                return {name: None}
            target = tenant.find(value)
            if target is None:
                raise not_found(value)
            return {name: tenant.mailbox(target, ("Name",))["Name"]}
        # Multi-valued: a list replaces, a hashtable {"add": [...], "remove": [...]} edits (ref §5).
        existing = list(current.get(name) or [])
        resolve = self._resolve_recipient if name == "GrantSendOnBehalfTo" else (lambda t, v: str(v))
        if isinstance(value, dict):
            unknown = [k for k in value if k.lower() not in ("add", "remove", "@odata.type")]
            if unknown:
                raise conversion_error(name, value, "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
                                       "Unexpected key '%s'; use 'add' and 'remove'." % unknown[0])
            ops = {k.lower(): v for k, v in value.items()}
            result = existing
            for entry in _as_list(ops.get("add")):
                entry = resolve(tenant, entry)
                if entry.lower() not in [e.lower() for e in result]:
                    result = result + [entry]
            for entry in _as_list(ops.get("remove")):
                entry = resolve(tenant, entry)
                result = [e for e in result if e.lower() != entry.lower()]
            return {name: result}
        if value is None:
            return {name: []}
        return {name: [resolve(tenant, v) for v in _as_list(value)]}

    @staticmethod
    def _resolve_recipient(tenant, value):
        index = tenant.find(value)
        if index is None:
            raise CmdletError(404, "Ex4FC45C", "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
                              "Couldn't find object \"%s\". Please make sure that it was spelled correctly or specify "
                              "a different object." % value, code="NotFound")
        return tenant.mailbox(index, ("Name",))["Name"]

    # -- control routes --------------------------------------------------------------------------
    def control(self, req):
        path = req.path.rstrip("/")
        tenant = self.tenant_for(self.sim.tenant_id)
        if req.method == "GET" and path.startswith("/exchange/mailboxes/"):
            identity = unquote(path[len("/exchange/mailboxes/"):])
            index = tenant.find(identity)
            if index is None:
                return Response.json(404, {"error": {"code": "NotFound", "message": "No mailbox '%s'." % identity}})
            return Response.json(200, dict(tenant.mailbox(index), Index=index))
        if req.method == "GET" and path == "/exchange/overrides":
            return Response.json(200, {str(k): v for k, v in tenant.overrides.items()})
        if req.method == "POST" and path == "/exchange/reset":
            for each in self.tenants.values():
                each.reset()
            return Response.json(200, {"reset": True})
        return None


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class ComplianceService(Service):
    """The generic Security & Compliance host: every /adminapi/ call gets a 302 to the regional host (ref §10)."""

    name = "scc"

    def __init__(self, sim, regional_base):
        self.sim = sim
        self.regional_base = regional_base.rstrip("/")

    def claims(self, req):
        return req.path.lower().startswith("/adminapi/")

    def handle(self, req):
        location = self.regional_base + req.path + ("?" + req.raw_query if req.raw_query else "")
        return Response(302, b"", {"Location": location, "Content-Type": "text/html; charset=utf-8"})


class ComplianceRegionalService(_BaseService):
    """The regional Security & Compliance host (e.g. nam12b.ps.compliance.protection.outlook.com)."""

    name = "scc"
    audience_service = "scc"

    def __init__(self, sim):
        super().__init__(sim)
        self.cmdlets = {
            "get-retentioncompliancepolicy": ("Get-RetentionCompliancePolicy", self.get_retention_policy, False),
            "get-compliancesearch": ("Get-ComplianceSearch", self.get_compliance_search, False),
            "get-label": ("Get-Label", self.get_label, False),
            "get-dlpcompliancepolicy": ("Get-DlpCompliancePolicy", self.get_dlp_policy, False),
        }

    def _guid(self, *parts):
        return self.sim.stable_uuid("scc", *parts)

    def _stamp(self, days):
        return time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime(1700000000 + days * 86400))

    def get_retention_policy(self, call):
        params = bind(call, ("Identity", "DistributionDetail", "RetentionRuleTypes", "IncludeTestModeResults",
                             "ExcludeTeamsPolicy"))
        rows = []
        for n, (name, locations) in enumerate((("Default Mailbox Retention", ["All"]),
                                               ("Finance 7 Years", ["All"]),
                                               ("Teams Chats 1 Year", []),
                                               ("Legal Hold Custodians", ["All"]))):
            rows.append({"Name": name, "Identity": self._guid("rcp", name), "Guid": self._guid("rcp", name),
                         "Enabled": True, "Mode": "Enforce", "Type": "RetentionCompliancePolicy",
                         "ExchangeLocation": locations, "SharePointLocation": [], "OneDriveLocation": [],
                         "TeamsChatLocation": ["All"] if "Teams" in name else [],
                         "DistributionStatus": "Success", "Workload": "Exchange" if locations else "Teams",
                         "WhenCreated": self._stamp(n * 40), "WhenChanged": self._stamp(n * 40 + 3),
                         "Comment": None, "RestrictiveRetention": False})
        return self.fixed_list(call, rows, params.get("Identity"), ("Identity", "Name", "Guid"))

    def get_compliance_search(self, call):
        params = bind(call, ("Identity", "Case", "ResultSize"))
        rows = []
        for n, name in enumerate(("Phishing sweep", "Departed employee export", "Contract keyword review")):
            rows.append({"Name": name, "Identity": self._guid("cs", name), "RunBy": "Admin", "Status": "Completed",
                         "ContentMatchQuery": "subject:\"%s\"" % name.split()[0], "ExchangeLocation": ["All"],
                         "Items": 120 * (n + 1), "Size": 1048576 * (n + 3), "JobEndTime": self._stamp(300 + n)})
        return self.fixed_list(call, rows, params.get("Identity"), ("Identity", "Name"))

    def get_label(self, call):
        params = bind(call, ("Identity", "IncludeDetailedLabelActions", "SkipValidations"))
        rows = []
        for n, name in enumerate(("Public", "General", "Confidential", "Highly Confidential")):
            rows.append({"Name": name, "DisplayName": name, "Identity": self._guid("label", name),
                         "Guid": self._guid("label", name), "Priority": n, "ContentType": "File, Email",
                         "Disabled": False, "Mode": "Enforce", "Tooltip": "%s data" % name,
                         "ParentId": None, "WhenCreated": self._stamp(10 + n)})
        return self.fixed_list(call, rows, params.get("Identity"), ("Identity", "Name", "DisplayName", "Guid"))

    def get_dlp_policy(self, call):
        params = bind(call, ("Identity", "DistributionDetail"))
        rows = [{"Name": "U.S. Financial Data", "Identity": self._guid("dlp", "fin"), "Mode": "TestWithNotifications",
                 "Enabled": True, "ExchangeLocation": ["All"], "Workload": "Exchange, SharePoint, OneDriveForBusiness",
                 "WhenCreated": self._stamp(120)}]
        return self.fixed_list(call, rows, params.get("Identity"), ("Identity", "Name"))
