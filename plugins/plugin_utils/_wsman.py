# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""WS-Management Get/Put of a Windows host's WinRM client configuration (controller side only).

``winrm get winrm/config/client`` and ``winrm set winrm/config/client/auth @{Basic="true"}`` are plain
WS-Transfer Get and Put requests on the configuration resources of the host's WinRM service (MS-WSMV
§3.1.4.2/§3.1.4.3). This helper builds them with the host's own pywinrm ``Protocol`` (the one Ansible's
``winrm`` connection authenticated, so the inventory's transport, auth and message encryption apply) and
parses the answers by local name. It imports neither pywinrm nor Ansible: it only needs an object with
``build_wsman_header(action, resource_uri)`` and ``send_message(text) -> bytes``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoError

try:
    import xmltodict
    HAS_XMLTODICT = True
except ImportError:  # pragma: no cover - pywinrm (and so Ansible's winrm connection) requires it
    xmltodict = None
    HAS_XMLTODICT = False

# Full resource URIs (MS-WSMV §3.1.4.2). Never the alias winrm/config/...: only the Windows client expands
# it; a service answers the alias with WSManFault 2150858811 (reference winrm-wsman-config.md §1, §2).
URI_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
URI_CLIENT = URI_CONFIG + "/client"
URI_CLIENT_AUTH = URI_CONFIG + "/client/auth"

ACTION_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
ACTION_PUT = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"

# WSManFault codes (winerror.h ERROR_WSMAN_*; reference §8, §9).
FAULT_GPO_CONTROLLED = 2150858890          # 0x8033808A: cannot change a GPO controlled setting
FAULT_RESOURCE_NOT_FOUND = 2150858811      # 0x8033803B: resource URI not in the WS-Management catalog
FAULT_OPERATION_TIMEOUT = 2150858793       # 0x80338029
FAULT_SCHEMA_VALIDATION = 2150858817       # 0x80338041: the XML does not match the schema
FAULT_INVALID_HOSTNAME_PATTERN = 2150858911  # 0x8033809F: TrustedHosts holds an invalid pattern
FAULT_ACCESS_DENIED = (5, 2147942405)      # ERROR_ACCESS_DENIED as a Win32 code and as an HRESULT

POLICY_KEY = "HKLM\\Software\\Policies\\Microsoft\\Windows\\WinRM\\Client"


class Setting(object):
    """One client setting: the module option, the element in the WinRM schema and its policy value."""

    def __init__(self, option, element, group, kind, policy):
        self.option = option        # module option name, e.g. basic
        self.element = element      # local element name, e.g. Basic
        self.group = group          # "auth" (in cfg:Auth) or "client" (direct child of cfg:Client)
        self.kind = kind            # "bool" or "hosts"
        self.policy = policy        # registry value(s) under POLICY_KEY, or None when no policy exists

    @property
    def path(self):
        return "Auth/%s" % self.element if self.group == "auth" else self.element

    @property
    def policy_value(self):
        if not self.policy:
            return None
        return " + ".join("%s\\%s" % (POLICY_KEY, name) for name in self.policy)


# MS-WSMV §2.2.4.4 ClientAuthType and §2.2.4.6 ClientType; policy registry values from the Policy CSP
# RemoteManagement pages (reference §8 table). Auth/Certificate has no client policy.
SETTINGS = (
    Setting("basic", "Basic", "auth", "bool", ("AllowBasic",)),
    Setting("digest", "Digest", "auth", "bool", ("AllowDigest",)),
    Setting("kerberos", "Kerberos", "auth", "bool", ("AllowKerberos",)),
    Setting("negotiate", "Negotiate", "auth", "bool", ("AllowNegotiate",)),
    Setting("certificate", "Certificate", "auth", "bool", None),
    Setting("credssp", "CredSSP", "auth", "bool", ("AllowCredSSP",)),
    Setting("allow_unencrypted", "AllowUnencrypted", "client", "bool", ("AllowUnencryptedTraffic",)),
    Setting("trusted_hosts", "TrustedHosts", "client", "hosts", ("TrustedHosts", "TrustedHostsList")),
)
BY_OPTION = dict((s.option, s) for s in SETTINGS)
BY_ELEMENT = dict((s.element, s) for s in SETTINGS)


class WsmanError(ExoError):
    """A WS-Management request failed; ``message`` says what happened on which host and what to do."""

    def __init__(self, message, wsman_code=None, status=None, reason=None, settings=None):
        details = {}
        if wsman_code is not None:
            details["wsman_fault_code"] = wsman_code
        if reason:
            details["reason"] = reason
        super(WsmanError, self).__init__(message, status=status, code=wsman_code, details=details)
        self.wsman_code = wsman_code
        self.reason = reason
        self.settings = list(settings or [])


class PolicyControlledError(WsmanError):
    """A Put touched a setting Group Policy holds (WSManFault 2150858890)."""


# --- values -------------------------------------------------------------------------------------------

def parse_bool(text):
    value = (text or "").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    return None


def split_hosts(value):
    """TrustedHosts as a list: the WinRM format is one comma-separated string; blanks are dropped."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            items.extend(split_hosts(item))
        return items
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _dedupe(items):
    seen, out = set(), []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out


def merge_trusted_hosts(current, wanted, mode):
    """The TrustedHosts list after applying ``wanted`` with ``mode`` (add | remove | set).

    Comparison is case-insensitive and ignores blanks and duplicates (host names are case-insensitive);
    existing entries keep their order and spelling, so adding a present host is no change.
    """
    current = _dedupe(split_hosts(current))
    wanted = _dedupe(split_hosts(wanted))
    if mode == "add":
        present = set(item.lower() for item in current)
        return current + [item for item in wanted if item.lower() not in present]
    if mode == "remove":
        drop = set(item.lower() for item in wanted)
        return [item for item in current if item.lower() not in drop]
    if mode == "set":
        return wanted
    raise ValueError("trusted_hosts_mode must be add, remove or set, not %r" % (mode,))


def same_hosts(left, right):
    """Whether two TrustedHosts values hold the same hosts (case-insensitive, order and blanks ignored)."""
    return set(item.lower() for item in split_hosts(left)) == set(item.lower() for item in split_hosts(right))


def to_wire(setting, value):
    if setting.kind == "bool":
        return "true" if value else "false"
    return ",".join(split_hosts(value))


# --- XML ----------------------------------------------------------------------------------------------

def _local(tag):
    """Local name of an ElementTree tag: match by local name, never by namespace (reference §4)."""
    return tag.rsplit("}", 1)[-1]


def _require_xmltodict():
    if not HAS_XMLTODICT:
        raise WsmanError("The Python library xmltodict is required to talk WS-Management (it comes with pywinrm, "
                         "which Ansible's winrm connection needs): install pywinrm on the controller.")


def build_get(protocol, resource_uri):
    """A WS-Transfer Get envelope (reference §5 request; pywinrm's header, reference §10)."""
    _require_xmltodict()
    envelope = protocol.build_wsman_header(action=ACTION_GET, resource_uri=resource_uri)
    envelope["env:Body"] = {}
    return xmltodict.unparse({"env:Envelope": envelope})


def build_put(protocol, resource_uri, values):
    """A partial WS-Transfer Put: only the elements in ``values`` ({element: text}) are sent.

    Reference §6: Microsoft's own client sends ``<cfg:Auth xmlns:cfg=".../config/client/auth">`` with just the
    child it changes; the same shape with ``cfg:Client`` and the ``.../config/client`` namespace for client
    settings. pywinrm's header declares ``cfg`` as ``.../config`` (reference §10 caveat), so the body element
    redeclares ``xmlns:cfg`` as the resource URI.
    """
    _require_xmltodict()
    root = {URI_CLIENT_AUTH: "Auth", URI_CLIENT: "Client"}[resource_uri]
    body = {"@xmlns:cfg": resource_uri}
    for element, text in values.items():
        body["cfg:%s" % element] = text
    envelope = protocol.build_wsman_header(action=ACTION_PUT, resource_uri=resource_uri)
    envelope["env:Body"] = {"cfg:%s" % root: body}
    return xmltodict.unparse({"env:Envelope": envelope})


class ClientConfig(object):
    """Client settings read from a Get (or Put) response: ``values`` {option: value}, ``sources`` {option: 'GPO'}."""

    def __init__(self, values=None, sources=None, extra=None):
        self.values = dict(values or {})
        self.sources = dict(sources or {})
        self.extra = dict(extra or {})   # other leaves (NetworkDelayms, DefaultPorts/HTTP, spn_prefix...)

    def held(self, option):
        return (self.sources.get(option) or "").upper() == "GPO"

    def as_result(self):
        out = {}
        for setting in SETTINGS:
            if setting.option in self.values:
                value = self.values[setting.option]
                out[setting.option] = split_hosts(value) if setting.kind == "hosts" else value
        return out

    def update(self, other):
        self.values.update(other.values)
        for option in other.values:
            if option in other.sources:
                self.sources[option] = other.sources[option]
            else:
                self.sources.pop(option, None)
        self.extra.update(other.extra)


def _body(document):
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise WsmanError("The WinRM service answered with XML that cannot be parsed: %s" % exc)
    for child in root:
        if _local(child.tag) == "Body":
            return child
    raise WsmanError("The WinRM service answered without a SOAP Body.")


def _leaf(config, element, group, node):
    setting = BY_ELEMENT.get(_local(node.tag))
    name = _local(node.tag)
    text = node.text or ""
    # Reference §8: a value held by policy carries Source="GPO" (unprefixed attribute; any prefix accepted).
    source = None
    for attr, value in node.attrib.items():
        if _local(attr) == "Source":
            source = value
    if setting is not None and setting.group == group:
        if setting.kind == "bool":
            parsed = parse_bool(text)
            if parsed is None:
                raise WsmanError("The WinRM service reported %s = %r, which is not a boolean." % (setting.path, text))
            config.values[setting.option] = parsed
        else:
            config.values[setting.option] = ",".join(split_hosts(text))
        if source:
            config.sources[setting.option] = source
    else:
        # Unknown elements are kept, not refused: newer builds add some (e.g. spn_prefix; reference §3).
        config.extra[element + name] = text


def parse_client_config(document):
    """Parse a GetResponse/PutResponse of .../config, .../config/client or .../config/client/auth."""
    body = _body(document)
    roots = list(body)
    if len(roots) != 1:
        raise WsmanError("The WinRM service answered with %d resource elements where one was expected." % len(roots))
    root = roots[0]
    name = _local(root.tag)
    if name == "Config":
        client = [child for child in root if _local(child.tag) == "Client"]
        if not client:
            raise WsmanError("The WinRM configuration document has no Client element.")
        root, name = client[0], "Client"
    config = ClientConfig()
    if name == "Auth":
        for node in root:
            _leaf(config, "Auth/", "auth", node)
        return config
    if name != "Client":
        raise WsmanError("The WinRM service answered with a %s element where Client or Auth was expected." % name)
    for node in root:
        if _local(node.tag) == "Auth":
            for leaf in node:
                _leaf(config, "Auth/", "auth", leaf)
        elif len(node):
            for leaf in node:
                config.extra["%s/%s" % (_local(node.tag), _local(leaf.tag))] = leaf.text or ""
        else:
            _leaf(config, "", "client", node)
    return config


# --- faults -------------------------------------------------------------------------------------------

def describe_policy(settings):
    return "; ".join("%s (%s): policy value %s" % (s.option, s.path, s.policy_value or "none known")
                     for s in settings)


def error_from_exception(exc, host, operation, resource_uri, settings=()):
    """Map what pywinrm raised to a WsmanError with an actionable message (no secrets: pywinrm's texts hold none).

    pywinrm 0.5.0 raises WSManFaultError (``wsman_fault_code`` int, ``reason``, ``code`` = HTTP status) for
    SOAP faults, InvalidCredentialsError for HTTP 401 and WinRMTransportError for other HTTP errors
    (reference §10). Duck typing keeps this file free of a pywinrm import.
    """
    if isinstance(exc, WsmanError):
        return exc
    settings = list(settings)
    code = getattr(exc, "wsman_fault_code", None)
    reason = getattr(exc, "reason", None) or ""
    status = getattr(exc, "code", None)
    status = status if isinstance(status, int) else None
    where = "%s of %s on %s" % (operation, resource_uri, host)
    if code == FAULT_GPO_CONTROLLED:
        return PolicyControlledError(
            "%s refused to change %s: the setting is controlled by Group Policy (WSManFault %d). %s. Set the policy "
            "to \"Not Configured\" (or change it in the GPO that sets it), or use policy_controlled=warn to report "
            "and skip it." % (host, ", ".join(s.option for s in settings) or "a client setting", code,
                              describe_policy(settings) or POLICY_KEY),
            wsman_code=code, status=status, reason=reason, settings=settings)
    if code == FAULT_RESOURCE_NOT_FOUND:
        return WsmanError("%s failed: the WinRM service does not know that resource URI (WSManFault %d, not in the "
                          "WS-Management catalog): %s" % (where, code, reason), wsman_code=code, status=status, reason=reason)
    if code == FAULT_SCHEMA_VALIDATION:
        return WsmanError("%s failed: the host rejected the values as not matching the WinRM configuration schema "
                          "(WSManFault %d): %s" % (where, code, reason), wsman_code=code, status=status, reason=reason)
    if code == FAULT_INVALID_HOSTNAME_PATTERN:
        return WsmanError("%s failed: trusted_hosts holds a name or pattern WinRM does not accept (WSManFault %d): %s"
                          % (where, code, reason), wsman_code=code, status=status, reason=reason)
    if code in FAULT_ACCESS_DENIED:
        return WsmanError("%s failed: access denied (WSManFault %d). Changing WinRM configuration needs a member of "
                          "the local Administrators group on the host: %s" % (where, code, reason),
                          wsman_code=code, status=status, reason=reason)
    if code == FAULT_OPERATION_TIMEOUT or type(exc).__name__ == "WinRMOperationTimeoutError":
        return WsmanError("%s timed out on the WinRM service (WSManFault %d); raise ansible_winrm_operation_timeout_sec "
                          "or check the host." % (where, FAULT_OPERATION_TIMEOUT), wsman_code=FAULT_OPERATION_TIMEOUT)
    if code is not None:
        return WsmanError("%s failed with WSManFault %d: %s" % (where, code, reason), wsman_code=code, status=status,
                          reason=reason)
    if type(exc).__name__ == "InvalidCredentialsError":
        return WsmanError("%s failed: the WinRM service rejected the connection's credentials (HTTP 401)." % where,
                          status=401)
    text = str(exc) or type(exc).__name__
    return WsmanError("%s failed: %s" % (where, text), status=status)


# --- the client ---------------------------------------------------------------------------------------

class WsmanConfigClient(object):
    """Reads and changes one host's WinRM client configuration through its pywinrm Protocol."""

    def __init__(self, protocol, host):
        self.protocol = protocol
        self.host = host
        self.requests = []   # (operation, resource URI) in order: what this task cost the host

    def _send(self, operation, resource_uri, message, settings=()):
        self.requests.append((operation, resource_uri))
        try:
            return self.protocol.send_message(message)
        except Exception as exc:  # pylint: disable=broad-except  # pywinrm and requests raise many types
            raise error_from_exception(exc, self.host, operation, resource_uri, settings)

    def get_client(self):
        """One Get of .../config/client: every client setting, Auth included, with its Source marker."""
        return parse_client_config(self._send("Get", URI_CLIENT, build_get(self.protocol, URI_CLIENT)))

    def put(self, changes):
        """Partial Puts of ``changes`` ({option: value}); returns the settings as the host reports them after."""
        after = ClientConfig()
        auth = [BY_OPTION[o] for o in changes if BY_OPTION[o].group == "auth"]
        client = [BY_OPTION[o] for o in changes if BY_OPTION[o].group == "client"]
        # Auth/Basic cannot be set through .../config/client (winrm.vbs only edits direct children; reference
        # §7), so auth settings go to .../config/client/auth and the rest to .../config/client.
        for resource_uri, settings in ((URI_CLIENT_AUTH, auth), (URI_CLIENT, client)):
            if not settings:
                continue
            values = dict((s.element, to_wire(s, changes[s.option])) for s in settings)
            answer = self._send("Put", resource_uri, build_put(self.protocol, resource_uri, values), settings)
            after.update(parse_client_config(answer))
        return after
