# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lazily generated, seeded Exchange Online tenant data (mailboxes, recipients, org config).

Nothing is stored per mailbox: index -> mailbox is a pure function of (seed, organization, index), so
100,000 mailboxes cost no memory. Set-Mailbox changes are stored sparsely as overrides (index ->
{property: value}). A mailbox is built one property group at a time, only for the groups a request
needs, so a page of 1000 Minimum-set items takes milliseconds.

Display strings follow the service (reference exchange-online-rest.md §6): byte quantities
"99 GB (106,300,440,576 bytes)", timespans "90.00:00:00"; property sets follow §15.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import re
import threading

FIRST = ("Adele", "Alex", "Allan", "Bianca", "Brian", "Cameron", "Christie", "Debra", "Diego", "Emily", "Enrico",
         "Grady", "Henrietta", "Irvin", "Isaiah", "Johanna", "Joni", "Lee", "Lidia", "Lynne", "Megan", "Miriam",
         "Nestor", "Patti", "Pradeep", "Raul", "Sofia", "Tomas", "Ulrike", "Yuki", "Zainab", "Oskar", "Ingrid",
         "Mateo", "Aisha", "Noah", "Chen", "Priya", "Kofi", "Hana")
LAST = ("Vance", "Wilber", "Deyoung", "Kowalski", "Johnson", "White", "Cline", "Berger", "Siciliani", "Braun",
        "Gonzalez", "Archie", "Cerda", "Sayers", "Marshall", "Lauer", "Sherman", "Gu", "Holloway", "Robbins",
        "Bowen", "Hunter", "Wilke", "Fernandez", "Gupta", "Garcia", "Larsen", "Novak", "Okafor", "Tanaka",
        "Haddad", "Nilsson", "Petersen", "Rossi", "Moreau", "Kim", "Singh", "Mensah", "Yilmaz", "Costa")
DEPARTMENTS = ("Finance", "Sales", "Support", "HR", "Legal", "Marketing", "IT", "Operations", "Research", "Facilities")
OFFICES = ("London", "Seattle", "Munich", "Tokyo", "Sydney", "Toronto", "Paris", "Singapore")
BUILDINGS = ("A", "B", "C", "North", "South", "East", "West", "HQ")
EQUIPMENT = ("Projector", "Van", "Camera", "Laptop", "Microscope", "Printer")

TYPE_USER, TYPE_SHARED, TYPE_ROOM, TYPE_EQUIPMENT = "UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox"
RECIPIENT_TYPE_DETAILS = (
    "UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox", "LinkedMailbox", "LinkedRoomMailbox",
    "DiscoveryMailbox", "SchedulingMailbox", "TeamMailbox", "GroupMailbox", "LegacyMailbox", "MailUser",
    "MailContact", "MailUniversalDistributionGroup", "MailUniversalSecurityGroup", "DynamicDistributionGroup",
    "RemoteUserMailbox", "RemoteSharedMailbox", "RemoteRoomMailbox", "RemoteEquipmentMailbox", "User",
)

AUDIT_ADMIN = ["Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "FolderBind", "SendAs", "SendOnBehalf",
               "Create", "UpdateFolderPermissions", "UpdateInboxRules", "UpdateCalendarDelegation", "ApplyRecord",
               "MailItemsAccessed", "Send"]
AUDIT_DELEGATE = ["Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "SendAs", "SendOnBehalf", "Create",
                  "UpdateFolderPermissions", "UpdateInboxRules", "ApplyRecord", "MailItemsAccessed"]
AUDIT_OWNER = ["Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "UpdateFolderPermissions",
               "UpdateInboxRules", "UpdateCalendarDelegation", "ApplyRecord", "MailItemsAccessed", "Send"]

GB = 1024 ** 3
MB = 1024 ** 2
KB = 1024


def format_bytes(value):
    """ByteQuantifiedSize display string: "99 GB (106,300,440,576 bytes)" or "Unlimited" (ref §6)."""
    if value is None:
        return "Unlimited"
    for unit, size in (("TB", 1024 ** 4), ("GB", GB), ("MB", MB), ("KB", KB)):
        if value >= size:
            number = ("%.3f" % (value / size)).rstrip("0").rstrip(".")
            return "%s %s (%s bytes)" % (number, unit, format(value, ","))
    return "%d B (%s bytes)" % (value, format(value, ","))


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*(?:\(([\d,]+) bytes\))?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": KB, "MB": MB, "GB": GB, "TB": 1024 ** 4}


def parse_bytes(text):
    """A Set-Mailbox size value ("50GB", "50 GB", "52428800", "Unlimited", a display string) -> bytes or None.

    Raises ValueError when the text is not a size.
    """
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, int):
        return text
    text = str(text).strip()
    if text.lower() == "unlimited":
        return None
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(text)
    if match.group(3):
        return int(match.group(3).replace(",", ""))
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])


def format_timespan(days=0, seconds=0):
    """.NET TimeSpan.ToString(): "90.00:00:00", "01:30:00"."""
    total = int(days) * 86400 + int(seconds)
    d, rest = divmod(total, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return "%d.%02d:%02d:%02d" % (d, h, m, s)
    return "%02d:%02d:%02d" % (h, m, s)


_TIMESPAN_RE = re.compile(r"^\s*(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def parse_timespan(text):
    """"90.00:00:00" / "90" (days, as Set-Mailbox accepts for day-valued spans) -> display string."""
    if isinstance(text, bool):
        raise ValueError(text)
    text = str(text).strip()
    if text.isdigit():
        return format_timespan(days=int(text))
    match = _TIMESPAN_RE.match(text)
    if not match:
        raise ValueError(text)
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(text)
    return format_timespan(days, hours * 3600 + minutes * 60 + seconds)


def _date(seed_bytes, base_year=2019):
    offset = int.from_bytes(seed_bytes[:4], "big") % (5 * 365 * 86400)
    stamp = datetime.datetime(base_year, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00")


def _guid(raw):
    """A version-4 GUID string from 16 bytes (what uuid.UUID(bytes=..., version=4) gives, several times faster)."""
    data = bytearray(raw[:16])
    data[6] = (data[6] & 0x0F) | 0x40
    data[8] = (data[8] & 0x3F) | 0x80
    text = data.hex()
    return "%s-%s-%s-%s-%s" % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


# Annotation keys of the service's JSON (ref §6): every item carries Prop@data.type / Prop@odata.type.
_GUID_PROPS = ("Guid", "ExchangeGuid", "DatabaseGuid", "ArchiveGuid", "ArchiveDatabaseGuid", "DisabledArchiveGuid")
_DATE_PROPS = ("WhenCreated", "WhenChanged", "WhenMailboxCreated", "WhenCreatedUTC", "WhenChangedUTC",
               "LitigationHoldDate", "WhenSoftDeleted")
_INT_PROPS = ("ResourceCapacity", "SCLDeleteThreshold", "SCLJunkThreshold", "SCLQuarantineThreshold",
              "SCLRejectThreshold")
_LIST_PROPS = ("EmailAddresses", "AuditAdmin", "AuditDelegate", "AuditOwner", "DefaultAuditSet", "InPlaceHolds",
               "Languages", "GrantSendOnBehalfTo", "AcceptMessagesOnlyFrom", "AcceptMessagesOnlyFromDLMembers",
               "AcceptMessagesOnlyFromSendersOrMembers", "RejectMessagesFrom", "RejectMessagesFromDLMembers",
               "RejectMessagesFromSendersOrMembers", "BypassModerationFromSendersOrMembers", "ModeratedBy",
               "AddressListMembership", "GeneratedOfflineAddressBooks", "PoliciesExcluded", "PoliciesIncluded",
               "ResourceCustom", "ExtensionCustomAttribute1", "ExtensionCustomAttribute2",
               "ExtensionCustomAttribute3", "ExtensionCustomAttribute4", "ExtensionCustomAttribute5",
               "MailboxMoveFlags", "ArchiveName")


def _annotations():
    table = {}
    for name in _GUID_PROPS:
        table[name] = ((name + "@data.type", "System.Guid"), (name + "@odata.type", "#Guid"))
    for name in _DATE_PROPS:
        table[name] = ((name + "@data.type", "System.DateTime"), (name + "@odata.type", "#DateTimeOffset"))
    for name in _INT_PROPS:
        table[name] = ((name + "@data.type", "System.Int32"), (name + "@odata.type", "#Int32"))
    for name in _LIST_PROPS:
        table[name] = ((name + "@odata.type", "#Collection(String)"),)
    return table


ANNOTATIONS = _annotations()


class Base:
    """What every property group is derived from: the mailbox's identity (cheap, computed first)."""

    __slots__ = ("index", "raw", "kind", "alias", "display", "domain", "initial", "org")

    def __init__(self, index, raw, kind, alias, display, domain, initial, org):
        self.index = index
        self.raw = raw
        self.kind = kind
        self.alias = alias
        self.display = display
        self.domain = domain
        self.initial = initial
        self.org = org


def _g_minimum(b):
    smtp = "%s@%s" % (b.alias, b.domain)
    return {
        "Alias": b.alias,
        "DisplayName": b.display,
        "Id": b.alias,
        "Identity": b.alias,
        "Name": b.alias,
        "PrimarySmtpAddress": smtp,
        "RecipientType": "UserMailbox",
        "RecipientTypeDetails": b.kind,
        "UserPrincipalName": smtp,
    }


def _g_addresses(b):
    dn = "CN=%s,OU=%s,OU=Microsoft Exchange Hosted Organizations,DC=EURPR07A001,DC=prod,DC=outlook,DC=com" % (
        b.alias, b.initial)
    return {
        "DistinguishedName": dn,
        "EmailAddresses": ["SMTP:%s@%s" % (b.alias, b.domain), "smtp:%s@%s" % (b.alias, b.initial)],
        "ExchangeVersion": "0.20 (15.0.0.0)",
        "OrganizationId": b.org,
    }


def _g_ids(b):
    # Apart from the names: filters on names need not pay for the GUIDs.
    return {"ExternalDirectoryObjectId": _guid(b.raw[16:32]), "Guid": _guid(b.raw[0:16])}


def _user_quota(b):
    big = b.kind == TYPE_USER
    return (98 * GB, 99 * GB, 100 * GB) if big else (49 * GB, int(49.5 * GB), 50 * GB)


def _g_quota(b):
    warn, send, send_receive = _user_quota(b)
    return {
        "CalendarLoggingQuota": format_bytes(6 * GB),
        "IssueWarningQuota": format_bytes(warn),
        "ProhibitSendQuota": format_bytes(send),
        "ProhibitSendReceiveQuota": format_bytes(send_receive),
        "RecoverableItemsQuota": format_bytes(30 * GB),
        "RecoverableItemsWarningQuota": format_bytes(20 * GB),
        "RulesQuota": format_bytes(256 * KB),
        "UseDatabaseQuotaDefaults": False,
    }


def _g_audit(b):
    return {
        "AuditAdmin": list(AUDIT_ADMIN),
        "AuditDelegate": list(AUDIT_DELEGATE),
        "AuditEnabled": b.raw[40] % 10 != 0,
        "AuditLogAgeLimit": format_timespan(days=90),
        "AuditOwner": list(AUDIT_OWNER),
        "DefaultAuditSet": ["Admin", "Delegate", "Owner"],
    }


def _g_archive(b):
    has_archive = b.kind == TYPE_USER and b.raw[41] % 3 == 0
    return {
        "ArchiveDatabase": "EURPR07DG224-db%03d" % (b.raw[42] % 200) if has_archive else None,
        "ArchiveGuid": _guid(b.raw[32:48]) if has_archive else "00000000-0000-0000-0000-000000000000",
        "ArchiveName": ["In-Place Archive - " + b.display] if has_archive else [],
        "ArchiveQuota": format_bytes(100 * GB),
        "ArchiveWarningQuota": format_bytes(90 * GB),
        "ArchiveState": "HostedProvisioned" if has_archive else "None",
        "ArchiveStatus": "Active" if has_archive else "None",
        "AutoExpandingArchiveEnabled": has_archive and b.raw[43] % 2 == 0,
        "DisabledArchiveDatabase": None,
        "DisabledArchiveGuid": "00000000-0000-0000-0000-000000000000",
    }


def _g_delivery(b):
    return {
        "AcceptMessagesOnlyFrom": [],
        "AcceptMessagesOnlyFromDLMembers": [],
        "AcceptMessagesOnlyFromSendersOrMembers": [],
        "DeliverToMailboxAndForward": False,
        "ForwardingAddress": None,
        "ForwardingSmtpAddress": None,
        "GrantSendOnBehalfTo": [],
        "MaxReceiveSize": format_bytes(36 * MB),
        "MaxSendSize": format_bytes(35 * MB),
        "MessageCopyForSendOnBehalfEnabled": b.kind == TYPE_SHARED,
        "MessageCopyForSentAsEnabled": b.kind == TYPE_SHARED,
        "RecipientLimits": "500",
        "RejectMessagesFrom": [],
        "RejectMessagesFromDLMembers": [],
        "RejectMessagesFromSendersOrMembers": [],
    }


def _g_hold(b):
    held = b.kind == TYPE_USER and b.raw[44] % 7 == 0
    return {
        "ComplianceTagHoldApplied": False,
        "DelayHoldApplied": False,
        "DelayReleaseHoldApplied": False,
        "InPlaceHolds": ["mbx%s:1" % _guid(b.raw[48:64]).replace("-", "")] if held else [],
        "LitigationHoldDate": _date(b.raw[45:49], 2023) if held else None,
        "LitigationHoldDuration": "Unlimited",
        "LitigationHoldEnabled": held,
        "LitigationHoldOwner": ("admin@" + b.initial) if held else None,
    }


def _g_moderation(b):
    return {
        "BypassModerationFromSendersOrMembers": [],
        "ModeratedBy": [],
        "ModerationEnabled": False,
        "SendModerationNotifications": "Always",
    }


def _g_move(b):
    return {
        "MailboxMoveBatchName": None,
        "MailboxMoveFlags": ["None"],
        "MailboxMoveRemoteHostName": None,
        "MailboxMoveSourceMDB": None,
        "MailboxMoveStatus": "None",
        "MailboxMoveTargetMDB": None,
    }


def _g_policy(b):
    return {
        "AddressBookPolicy": None,
        "DataEncryptionPolicy": None,
        "EmailAddressPolicyEnabled": False,
        "ManagedFolderMailboxPolicy": None,
        "OwaMailboxPolicy": "OwaMailboxPolicy-Default",
        "PoliciesExcluded": ["{26491cfc-9e50-4857-861b-0cb8df22b5d7}"],
        "PoliciesIncluded": [],
        "RemoteAccountPolicy": None,
        "RetentionPolicy": "Default MRM Policy",
        "RoleAssignmentPolicy": "Default Role Assignment Policy",
        "SharingPolicy": "Default Sharing Policy",
        "ThrottlingPolicy": None,
    }


def _g_public_folder(b):
    return {
        "DefaultPublicFolderMailbox": None,
        "EffectivePublicFolderMailbox": None,
        "IsExcludedFromServingHierarchy": False,
        "IsHierarchyReady": False,
        "IsHierarchySyncEnabled": False,
        "IsRootPublicFolderMailbox": False,
    }


def _g_resource(b):
    resource = b.kind in (TYPE_ROOM, TYPE_EQUIPMENT)
    return {
        "ResourceCapacity": (4 + b.raw[46] % 20) if b.kind == TYPE_ROOM else None,
        "ResourceCustom": [],
        "ResourceType": ("Room" if b.kind == TYPE_ROOM else "Equipment") if resource else None,
        "RoomMailboxAccountEnabled": False if resource else None,
        "IsResource": resource,
        "IsShared": b.kind == TYPE_SHARED,
    }


def _g_retention(b):
    return {
        "EndDateForRetentionHold": None,
        "RetainDeletedItemsFor": format_timespan(days=14),
        "RetainDeletedItemsUntilBackup": False,
        "RetentionComment": None,
        "RetentionHoldEnabled": False,
        "RetentionUrl": None,
        "SingleItemRecoveryEnabled": True,
        "StartDateForRetentionHold": None,
    }


def _g_scl(b):
    return {
        "AntispamBypassEnabled": False,
        "SCLDeleteEnabled": None,
        "SCLDeleteThreshold": None,
        "SCLJunkEnabled": None,
        "SCLJunkThreshold": None,
        "SCLQuarantineEnabled": None,
        "SCLQuarantineThreshold": None,
        "SCLRejectEnabled": None,
        "SCLRejectThreshold": None,
    }


def _g_soft_delete(b):
    return {
        "IncludeInGarbageCollection": False,
        "InactiveMailboxRetireTime": None,
        "IsInactiveMailbox": False,
        "IsSoftDeletedByDisable": False,
        "IsSoftDeletedByRemove": False,
        "WhenSoftDeleted": None,
    }


def _g_statistics_seed(b):
    return {
        "ArchiveDatabaseGuid": "00000000-0000-0000-0000-000000000000",
        "Database": "EURPR07DG224-db%03d" % (b.raw[47] % 200),
        "DatabaseGuid": _guid(hashlib.md5(b"db%d" % (b.raw[47] % 200)).digest()),  # nosec - a stable id
        "ExchangeGuid": _guid(b.raw[48:64]),
    }


def _g_custom(b):
    out = {"CustomAttribute%d" % n: None for n in range(1, 16)}
    out["CustomAttribute1"] = DEPARTMENTS[b.raw[50] % len(DEPARTMENTS)]
    for n in range(1, 6):
        out["ExtensionCustomAttribute%d" % n] = []
    return out


def _g_address_list(b):
    return {
        "AddressListMembership": ["\\Offline Global Address List", "\\Default Global Address List",
                                  "\\All Users" if b.kind != TYPE_ROOM else "\\All Rooms"],
        "GeneratedOfflineAddressBooks": [],
        "HiddenFromAddressListsEnabled": False,
        "OfflineAddressBook": None,
    }


def _g_general(b):
    created = _date(b.raw[52:56])
    return {
        "Office": OFFICES[b.raw[51] % len(OFFICES)] if b.kind == TYPE_USER else None,
        "Languages": ["en-US"] if b.raw[53] % 4 else ["de-DE"],
        "IsMailboxEnabled": True,
        "IsDirSynced": b.raw[54] % 2 == 0,
        "MailboxPlan": "ExchangeOnlineEnterprise-" + _guid(hashlib.md5(b.org.encode()).digest()),  # nosec
        "UsageLocation": "United Kingdom",
        "WhenCreated": created,
        "WhenCreatedUTC": created,
        "WhenChanged": created,
        "WhenChangedUTC": created,
        "WhenMailboxCreated": created,
        "ServerName": "am6pr07mb%04d" % (b.raw[55] * 31 % 9000),
        "Type": b.kind[:-len("Mailbox")] if b.kind != TYPE_USER else "Regular",
    }


GROUPS = (_g_minimum, _g_addresses, _g_ids, _g_quota, _g_audit, _g_archive, _g_delivery, _g_hold, _g_moderation, _g_move, _g_policy,
          _g_public_folder, _g_resource, _g_retention, _g_scl, _g_soft_delete, _g_statistics_seed, _g_custom,
          _g_address_list, _g_general)


def _property_index():
    probe = Base(0, bytes(range(64)), TYPE_USER, "probe", "Probe", "example.com", "example.onmicrosoft.com", "org")
    index = {}
    for group in GROUPS:
        for name in group(probe):
            index.setdefault(name, group)
    return index


PROPERTY_GROUP = _property_index()  # property name -> the group function that makes it
ALL_PROPERTIES = tuple(PROPERTY_GROUP)
_CANONICAL = {name.lower(): name for name in ALL_PROPERTIES}
MINIMUM = ("Alias", "DisplayName", "DistinguishedName", "EmailAddresses", "ExchangeVersion", "ExternalDirectoryObjectId",
           "Guid", "Id", "Name", "OrganizationId", "PrimarySmtpAddress", "RecipientType", "RecipientTypeDetails",
           "UserPrincipalName")
RECIPIENT_PROPERTIES = ("Alias", "DisplayName", "DistinguishedName", "EmailAddresses", "ExternalDirectoryObjectId",
                        "Guid", "Identity", "Name", "OrganizationId", "PrimarySmtpAddress", "RecipientType",
                        "RecipientTypeDetails", "HiddenFromAddressListsEnabled", "WhenCreated", "WhenChanged")


def canonical_property(name):
    """Case-insensitive property name -> its canonical spelling, or None."""
    return _CANONICAL.get(str(name).lower())


_GROUP_CACHE = {}


def _groups_for(properties):
    """The group functions that make the properties (all of them for None), cached per property tuple."""
    key = None if properties is None else tuple(properties)
    groups = _GROUP_CACHE.get(key)
    if groups is None:
        if key is None:
            groups = GROUPS
        else:
            groups = []
            for name in key:
                group = PROPERTY_GROUP[name]
                if group not in groups:
                    groups.append(group)
            groups = tuple(groups)
        if len(_GROUP_CACHE) < 1024:
            _GROUP_CACHE[key] = groups
    return groups


class Tenant:
    """The mailboxes of one organization, generated on demand."""

    def __init__(self, seed, organization, count, tenant_id=None):
        self.seed = int(seed)
        self.organization = organization
        self.tenant_id = tenant_id
        self.count = int(count)
        label = organization.split(".", 1)[0]
        self.initial = organization if organization.endswith(".onmicrosoft.com") else label + ".onmicrosoft.com"
        self.domain = label + ".com"
        self.org_id = ("EURPR07A001.prod.outlook.com/Microsoft Exchange Hosted Organizations/%s - "
                       "EURPR07A001.prod.outlook.com/ConfigurationUnits/%s/Configuration" % (self.initial, self.initial))
        self.overrides = {}  # index -> {property: value} written by Set-Mailbox
        self.lock = threading.Lock()
        self._salt = ("%d|%s|" % (self.seed, organization)).encode("utf-8")

    # -- generation ------------------------------------------------------------------------------
    def base(self, index):
        raw = hashlib.blake2b(self._salt + str(index).encode("ascii"), digest_size=64).digest()
        pick = raw[60]
        if index < 4:  # the first mailboxes are people (the demo and tests look them up)
            pick = 0
        if pick < 218:          # ~85 %
            kind = TYPE_USER
            first, last = FIRST[raw[56] % len(FIRST)], LAST[raw[57] % len(LAST)]
            alias = "%s.%s%d" % (first.lower(), last.lower(), index)
            display = "%s %s" % (first, last)
        elif pick < 238:        # ~8 %
            kind = TYPE_SHARED
            dept = DEPARTMENTS[raw[56] % len(DEPARTMENTS)]
            alias = "shared.%s%d" % (dept.lower(), index)
            display = "%s Shared %d" % (dept, index)
        elif pick < 251:        # ~5 %
            kind = TYPE_ROOM
            building = BUILDINGS[raw[56] % len(BUILDINGS)]
            alias = "room.%s%d" % (building.lower(), index)
            display = "Room %s-%d" % (building, index)
        else:                   # ~2 %
            kind = TYPE_EQUIPMENT
            item = EQUIPMENT[raw[56] % len(EQUIPMENT)]
            alias = "equipment.%s%d" % (item.lower(), index)
            display = "%s %d" % (item, index)
        return Base(index, raw, kind, alias, display, self.domain, self.initial, self.org_id)

    def mailbox(self, index, properties=None):
        """The mailbox at index as a plain dict of the wanted properties (None = all), overrides applied."""
        b = self.base(index)
        out = {}
        for group in _groups_for(properties):
            out.update(group(b))
        changed = self.overrides.get(index)
        if changed:
            out.update(changed)
        if properties is not None:
            out = {name: out[name] for name in properties}
        return out

    def kind(self, index):
        changed = self.overrides.get(index)
        if changed and "RecipientTypeDetails" in changed:
            return changed["RecipientTypeDetails"]
        return self.base(index).kind

    # -- lookup ----------------------------------------------------------------------------------
    _TRAILING = re.compile(r"(\d+)$")

    def find(self, identity):
        """Index of the mailbox an -Identity value names (alias, name, SMTP/UPN, GUID, DN, display name)."""
        value = str(identity).strip()
        low = value.lower()
        if low.startswith("smtp:"):
            low = low[5:]
        candidate = low.split("@", 1)[0]
        if candidate.startswith("cn="):
            candidate = candidate[3:].split(",", 1)[0]
        match = self._TRAILING.search(candidate)
        if match:  # fast path: generated aliases end with their index
            index = int(match.group(1))
            if 0 <= index < self.count and self._matches(index, low):
                return index
        for index in range(self.count):  # slow path: GUIDs, display names, renamed mailboxes
            if self._matches(index, low):
                return index
        return None

    def _matches(self, index, low):
        mbx = self.mailbox(index, ("Alias", "Name", "PrimarySmtpAddress", "UserPrincipalName", "Guid",
                                   "ExternalDirectoryObjectId", "DistinguishedName", "DisplayName", "EmailAddresses"))
        for key in ("Alias", "Name", "PrimarySmtpAddress", "UserPrincipalName", "Guid", "ExternalDirectoryObjectId",
                    "DistinguishedName", "DisplayName"):
            if str(mbx[key]).lower() == low:
                return True
        return any(addr.lower().split(":", 1)[-1] == low for addr in mbx["EmailAddresses"])

    def set_override(self, index, changes):
        with self.lock:
            self.overrides.setdefault(index, {}).update(changes)

    def reset(self):
        with self.lock:
            self.overrides = {}


# -- OPATH filters (ref §15: -eq -ne -like -notlike -and -or -not, parentheses) -------------------

class FilterError(Exception):
    """An OPATH filter that does not parse; message in the service's words."""


_TOKEN_RE = re.compile(r"""\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>-[A-Za-z]+)"""
                       r"""|'(?P<sq>(?:[^']|'')*)'|"(?P<dq>(?:[^"]|"")*)"|(?P<var>\$[A-Za-z]+)|(?P<word>[^\s()'"]+))""")
_COMPARE = ("-eq", "-ne", "-like", "-notlike", "-ceq", "-ieq")


def _syntax(text, pos):
    return FilterError('Invalid filter syntax. For a description of the filter parameter syntax see the command help.\n'
                       '"%s" at position %d.' % (text, pos + 1))


def parse_filter(text):
    """Parse an OPATH filter into a predicate tree; raises FilterError like the service."""
    tokens = []
    pos = 0
    text = str(text)
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise _syntax(text, pos)
        kind = match.lastgroup
        value = match.group(kind)
        start = match.start(kind) - (1 if kind in ("sq", "dq") else 0)
        if kind == "sq":
            value = value.replace("''", "'")
        elif kind == "dq":
            value = value.replace('""', '"')
        tokens.append((kind, value, start))
        pos = match.end()
    parser = _Parser(text, tokens)
    tree = parser.expr()
    if parser.i != len(tokens):
        raise _syntax(text, tokens[parser.i][2])
    return tree


class _Parser:
    def __init__(self, text, tokens):
        self.text = text
        self.tokens = tokens
        self.i = 0

    def _peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None, len(self.text))

    def _op(self, name):
        kind, value = self._peek()[:2]
        if kind == "op" and value.lower() == name:
            self.i += 1
            return True
        return False

    def expr(self):
        node = self.term()
        while self._op("-or"):
            node = ("or", node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self._op("-and"):
            node = ("and", node, self.factor())
        return node

    def factor(self):
        if self._op("-not"):
            return ("not", self.factor())
        kind, value, pos = self._peek()
        if kind == "lp":
            self.i += 1
            node = self.expr()
            if self._peek()[0] != "rp":
                raise _syntax(self.text, self._peek()[2])
            self.i += 1
            return node
        if kind != "word":
            raise _syntax(self.text, pos)
        name = canonical_property(value)
        if name is None:
            raise FilterError("Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"'%s' is not "
                              "a recognized filterable property. For a description of the filterable properties see "
                              "the command help.\"" % value)
        self.i += 1
        kind, op, pos = self._peek()
        if kind != "op" or op.lower() not in _COMPARE:
            raise _syntax(self.text, pos)
        self.i += 1
        kind, literal, pos = self._peek()
        if kind not in ("sq", "dq", "word", "var"):
            raise _syntax(self.text, pos)
        self.i += 1
        op = op.lower().replace("-ceq", "-eq").replace("-ieq", "-eq")
        if kind == "var":
            low = literal.lower()
            if low not in ("$true", "$false", "$null"):
                raise _syntax(self.text, pos)
            literal = {"$true": True, "$false": False, "$null": None}[low]
        return ("cmp", name, op, literal)


def filter_properties(tree, acc=None):
    """The property names a filter reads."""
    acc = set() if acc is None else acc
    if tree[0] == "cmp":
        acc.add(tree[1])
    else:
        for child in tree[1:]:
            filter_properties(child, acc)
    return acc


def _scalar_matches(value, op, literal):
    if literal is None or value is None:
        equal = value is None and literal is None or (value in ("", []) and literal is None)
        return equal if op in ("-eq", "-like") else not equal
    if isinstance(value, bool) or isinstance(literal, bool):
        equal = str(value).lower() == str(literal).lower()
        return equal if op in ("-eq", "-like") else not equal
    text, pattern = str(value).lower(), str(literal).lower()
    if op in ("-like", "-notlike"):
        hit = fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))
        return hit if op == "-like" else not hit
    return (text == pattern) if op == "-eq" else (text != pattern)


def evaluate(tree, item):
    """Whether an item (dict with every property the filter reads) satisfies the filter."""
    head = tree[0]
    if head == "cmp":
        name, op, literal = tree[1:]
        value = item.get(name)
        if isinstance(value, list):
            if op in ("-ne", "-notlike"):
                positive = "-eq" if op == "-ne" else "-like"
                return not any(_scalar_matches(v, positive, literal) for v in value)
            if not value:
                return _scalar_matches(None, op, literal)
            return any(_scalar_matches(v, op, literal) for v in value)
        return _scalar_matches(value, op, literal)
    if head == "and":
        return evaluate(tree[1], item) and evaluate(tree[2], item)
    if head == "or":
        return evaluate(tree[1], item) or evaluate(tree[2], item)
    return not evaluate(tree[1], item)


def organization_config(tenant, tenant_guid):
    """Get-OrganizationConfig for the tenant (a realistic subset)."""
    name = tenant.initial
    return {
        "Name": name,
        "DisplayName": name.split(".", 1)[0].capitalize(),
        "Identity": name,
        "Id": name,
        "Guid": tenant_guid,
        "OrganizationId": tenant.org_id,
        "ExchangeVersion": "0.20 (15.0.0.0)",
        "IsDehydrated": False,
        "AuditDisabled": False,
        "OAuth2ClientProfileEnabled": True,
        "ModernAuthenticationEnabled": True,
        "DefaultAuthenticationPolicy": None,
        "MailTipsAllTipsEnabled": True,
        "CustomerLockboxEnabled": False,
        "RemotePublicFolderMailboxes": [],
        "PublicFoldersEnabled": "Local",
        "ConnectorsEnabled": True,
        "SendFromAliasEnabled": False,
        "AutoExpandingArchiveEnabled": False,
        "ElcProcessingDisabled": False,
        "WhenCreated": "2019-03-04T09:12:44.0000000+00:00",
        "ObjectState": "Unchanged",
    }


def accepted_domains(tenant):
    """Get-AcceptedDomain: the custom default domain, the initial domain and the routing domain."""
    label = tenant.initial.split(".", 1)[0]
    rows = []
    for domain, default, initial in ((tenant.domain, True, False), (tenant.initial, False, True),
                                     ("%s.mail.onmicrosoft.com" % label, False, False)):
        rows.append({
            "Name": domain, "Identity": domain, "Id": domain, "DomainName": domain, "DomainType": "Authoritative",
            "Default": default, "InitialDomain": initial, "MatchSubDomains": False, "AddressBookEnabled": True,
            "IsValid": True, "OrganizationId": tenant.org_id, "ExchangeVersion": "0.20 (15.0.0.0)",
        })
    return rows
