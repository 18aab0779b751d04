# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated Windows admin workstations: one WinRM service (``/wsman``, HTTP and HTTPS) per workstation.

What a workstation answers (wire facts from MS-WSMV and real captures, summarised in the comments below):

- Basic authentication (``Authorization: Basic``) and, when pyspnego is installed, NTLM (``Negotiate``/``NTLM``
  schemes, context per TCP connection) with MS-WSMV message encryption over HTTP (``multipart/encrypted``,
  ``application/HTTP-SPNEGO-session-encrypted``, the layout pywinrm writes). A wrong or missing credential gets
  ``401`` with ``WWW-Authenticate: Negotiate, Basic realm="WSMAN"``. Kerberos and CredSSP are not simulated.
- WinRS shell ``Create``/``Delete`` (what Ansible's ``winrm`` connection does when it connects and
  closes), ``Command``/``Receive``/``Send``/``Signal`` so a command never hangs: every command ends at
  once with exit code 1 and a stderr line saying that a simulated workstation runs no commands.
- WS-Transfer ``Get`` on ``.../wsman/1/config``, ``.../config/client`` and ``.../config/client/auth`` and
  ``Put`` on the same three (partial documents: only the elements sent change; a whole document works too).
- Group Policy: a setting held by policy carries ``Source="GPO"`` on Get and a Put that contains it fails
  with WSManFault ``2150858890``. The simulator refuses a held element in a Put even with an unchanged
  value (the real behaviour there is an open question, reference §13 q2; the strict answer keeps clients
  honest about sending only what changes).
- Any other resource URI: WSManFault ``2150858811`` (resource URI not found in the catalog).

Initial state (decided here, documented in README.md): every workstation has the MS-WSMV schema defaults
for the client (NetworkDelayms 5000, URLPrefix wsman, AllowUnencrypted false, Digest/Kerberos/Negotiate/
Certificate true, CredSSP false, DefaultPorts 5985/5986, TrustedHosts empty) EXCEPT ``Auth/Basic``, which
is false (a hardened or baseline-managed workstation, so enabling Basic is a change). Every fourth
workstation (ws004, ws008, ...) already has Basic true, set by hand. With two or more workstations the last
one has client Basic held by Group Policy at false (``HKLM\\Software\\Policies\\Microsoft\\Windows\\WinRM\\
Client\\AllowBasic`` = 0, what Microsoft's security baseline sets), so enabling Basic there must fail.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import struct
import threading
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from .core import BadRequest, Listener, Response, Service

try:  # NTLM with message encryption when pyspnego is there (pywinrm's ntlm transport depends on it)
    import spnego
    import spnego.exceptions
except ImportError:
    spnego = None

# --- wire constants (reference winrm-wsman-config.md §2, §4, §5; MS-WSMV) ---------------------------
NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_MSWSMAN = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_WSMANFAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

URI_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
URI_CLIENT = URI_CONFIG + "/client"
URI_CLIENT_AUTH = URI_CONFIG + "/client/auth"
URI_SHELL_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"

ACTION_GET = NS_TRANSFER + "/Get"
ACTION_PUT = NS_TRANSFER + "/Put"
ACTION_CREATE = NS_TRANSFER + "/Create"
ACTION_DELETE = NS_TRANSFER + "/Delete"
ACTION_COMMAND = NS_SHELL + "/Command"
ACTION_RECEIVE = NS_SHELL + "/Receive"
ACTION_SEND = NS_SHELL + "/Send"
ACTION_SIGNAL = NS_SHELL + "/Signal"

COMMAND_STATE_DONE = NS_SHELL + "/CommandState/Done"

# WSManFault codes (winerror.h: ERROR_WSMAN_*; reference §8, §9).
FAULT_INVALID_ACTION = 2150858753          # 0x80338001 ERROR_WSMAN_INVALID_ACTIONURI
FAULT_INVALID_RESOURCE_URI = 2150858811    # 0x8033803B, "resource URI ... not found in the catalog"
FAULT_INVALID_SELECTORS = 2150858813       # 0x8033803D ERROR_WSMAN_INVALID_SELECTORS (unknown ShellId)
FAULT_SCHEMA_VALIDATION = 2150858817       # 0x80338041 ERROR_WSMAN_SCHEMA_VALIDATION_ERROR
FAULT_UNSUPPORTED_FEATURE = 2150858818     # 0x80338042 ERROR_WSMAN_UNSUPPORTED_FEATURE
FAULT_INVALID_XML = 2150858819             # 0x80338043 ERROR_WSMAN_INVALID_XML
FAULT_GPO_CONTROLLED = 2150858890          # 0x8033808A ERROR_WSMAN_CONFIG_CANNOT_CHANGE_GPO_CONTROLLED_SETTING
FAULT_INVALID_HOSTNAME_PATTERN = 2150858911  # 0x8033809F ERROR_WSMAN_INVALID_HOSTNAME_PATTERN

# Client elements (MS-WSMV §2.2.4.4 ClientAuthType, §2.2.4.6 ClientType) and their kinds.
AUTH_ELEMENTS = ("Basic", "Digest", "Kerberos", "Negotiate", "Certificate", "CredSSP")
CLIENT_SCALARS = ("NetworkDelayms", "URLPrefix", "AllowUnencrypted")
DEFAULT_PORT_ELEMENTS = ("HTTP", "HTTPS")
BOOLEAN_ELEMENTS = frozenset(AUTH_ELEMENTS + ("AllowUnencrypted",))

# Group Policy registry values behind client settings (reference §8, Policy CSP RemoteManagement).
POLICY_KEY = "HKLM\\Software\\Policies\\Microsoft\\Windows\\WinRM\\Client"
POLICY_VALUES = {
    "Basic": "AllowBasic",
    "Digest": "AllowDigest",
    "Kerberos": "AllowKerberos",
    "Negotiate": "AllowNegotiate",
    "CredSSP": "AllowCredSSP",
    "AllowUnencrypted": "AllowUnencryptedTraffic",
    "TrustedHosts": "TrustedHostsList",
}

# The message Windows formats for 0x8033808A (grammar as in the original; reference §8).
GPO_MESSAGE = ("The config setting %s cannot be changed because is controlled by policies. The policy would need "
               "to be set to \"Not Configured\" in order to change the config setting.")

# 401 challenge: the schemes a workstation accepts (Windows sends one header per scheme; one line here).
CHALLENGE = 'Negotiate, Basic realm="WSMAN"'
ENCRYPTED_BOUNDARY = b"--Encrypted Boundary"
ENCRYPTED_PROTOCOL = b"application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
_NTLM_LOCK = threading.Lock()

_URL_PREFIX = re.compile(r"^[A-Za-z0-9_/]+$")
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9*._:\[\]<>-]+$")


def local(tag):
    """Local name of an ElementTree tag ("{ns}Name" -> "Name"): match by local name (reference §4)."""
    return tag.rsplit("}", 1)[-1]


def bool_text(value):
    return "true" if value else "false"


def parse_bool(name, text):
    value = (text or "").strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                     "The value '%s' of %s is not a valid boolean (true or false)." % (text, name))


class WsmanFault(Exception):
    """A WS-Management fault; rendered in the ref §8 shape (HTTP 500, s:Fault with a WSManFault Code)."""

    def __init__(self, code, subcode, message, sender=True, status=500):
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.sender = sender
        self.status = status


# --- NTLM message encryption (MS-WSMV §2.2.9.1.1; the layout pywinrm's Encryption class reads and writes) ---

def ntlm_unwrap(context, body):
    """Decrypt a multipart/encrypted body: each part is <4-byte signature length><signature><sealed data>."""
    parts = [p for p in body.split(ENCRYPTED_BOUNDARY + b"\r\n") if p]
    message = b""
    for index in range(0, len(parts) - 1, 2):
        header, payload = parts[index], parts[index + 1]
        if b"Length=" not in header:
            raise ValueError("no OriginalContent length")
        expected = int(header.split(b"Length=")[1].split(b"\r\n")[0])
        if payload.endswith(ENCRYPTED_BOUNDARY + b"--\r\n"):
            payload = payload[:-len(ENCRYPTED_BOUNDARY + b"--\r\n")]
        payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        sig_len = struct.unpack("<i", payload[:4])[0]
        data = context.unwrap(payload[4:4 + sig_len] + payload[4 + sig_len:]).data
        if len(data) != expected:
            raise ValueError("decrypted length %d, header says %d" % (len(data), expected))
        message += data
    return message


def ntlm_wrap(context, data):
    sealed = context.wrap(data, encrypt=True).data
    signature, payload = sealed[:16], sealed[16:]
    return (ENCRYPTED_BOUNDARY + b"\r\n\tContent-Type: " + ENCRYPTED_PROTOCOL + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(data)).encode() + b"\r\n"
            + ENCRYPTED_BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(signature)) + signature + payload + ENCRYPTED_BOUNDARY + b"--\r\n")


# --- request parsing -------------------------------------------------------------------------------

class Message:
    """The parts of a WS-Management request a workstation needs, found by local name."""

    __slots__ = ("action", "message_id", "resource_uri", "selectors", "options", "body")

    def __init__(self, action, message_id, resource_uri, selectors, options, body):
        self.action = action
        self.message_id = message_id
        self.resource_uri = resource_uri
        self.selectors = selectors
        self.options = options
        self.body = body


def parse_message(data):
    """Parse a SOAP envelope; raises WsmanFault for malformed XML or a missing header."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise WsmanFault(FAULT_INVALID_XML, "w:SchemaValidationError",
                         "The WS-Management service cannot process the request because the XML is invalid: %s" % exc)
    if local(root.tag) != "Envelope":
        raise WsmanFault(FAULT_INVALID_XML, "w:SchemaValidationError", "The request is not a SOAP envelope.")
    header = body = None
    for child in root:
        if local(child.tag) == "Header":
            header = child
        elif local(child.tag) == "Body":
            body = child
    action = message_id = resource_uri = None
    selectors, options = {}, {}
    for item in (header if header is not None else ()):
        name = local(item.tag)
        if name == "Action":
            action = (item.text or "").strip()
        elif name == "MessageID":
            message_id = (item.text or "").strip()
        elif name == "ResourceURI":
            resource_uri = (item.text or "").strip()
        elif name == "SelectorSet":
            selectors = {sel.get("Name"): (sel.text or "").strip() for sel in item if local(sel.tag) == "Selector"}
        elif name == "OptionSet":
            options = {opt.get("Name"): (opt.text or "").strip() for opt in item if local(opt.tag) == "Option"}
    if not action:
        raise WsmanFault(FAULT_INVALID_ACTION, "a:ActionNotSupported", "The request has no WS-Addressing Action header.")
    if not message_id:
        raise WsmanFault(FAULT_SCHEMA_VALIDATION, "a:InvalidMessageInformationHeader",
                         "The request has no WS-Addressing MessageID header.")
    return Message(action, message_id, resource_uri or "", selectors, options, body)


# --- response building -----------------------------------------------------------------------------

_ENVELOPE_OPEN = ('<s:Envelope xml:lang="en-US" xmlns:s="%s" xmlns:a="%s" xmlns:x="%s" xmlns:w="%s" xmlns:p="%s"'
                  ' xmlns:rsp="%s">' % (NS_SOAP, NS_ADDRESSING, NS_TRANSFER, NS_WSMAN, NS_MSWSMAN, NS_SHELL))


def envelope(action, relates_to, body_xml):
    """A response envelope in the shape of the real capture (reference §5): RelatesTo echoes MessageID."""
    header = ("<s:Header><a:Action>%s</a:Action><a:MessageID>uuid:%s</a:MessageID><a:To>%s</a:To>"
              "<a:RelatesTo>%s</a:RelatesTo></s:Header>"
              % (escape(action), str(uuid.uuid4()).upper(), ANONYMOUS, escape(relates_to or "")))
    body = "<s:Body>%s</s:Body>" % body_xml if body_xml else "<s:Body/>"
    return (_ENVELOPE_OPEN + header + body + "</s:Envelope>").encode("utf-8")


def fault_envelope(fault, relates_to, machine):
    """A SOAP 1.2 fault carrying a WSManFault (reference §8 expected shape)."""
    code = "s:Sender" if fault.sender else "s:Receiver"
    body = ('<s:Fault><s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>'
            '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>'
            '<s:Detail><f:WSManFault xmlns:f="%s" Code="%d" Machine=%s><f:Message>%s</f:Message>'
            '</f:WSManFault></s:Detail></s:Fault>'
            % (code, escape(fault.subcode), escape(fault.message), NS_WSMANFAULT, fault.code,
               quoteattr(machine), escape(fault.message)))
    return envelope(NS_ADDRESSING + "/fault", relates_to, body)


def soap_response(status, data):
    return Response(status, data, {"Content-Type": "application/soap+xml;charset=UTF-8"})


# --- configuration state ---------------------------------------------------------------------------

def default_client():
    """MS-WSMV schema defaults (reference §3, §5 capture) with Basic off (see the module docstring)."""
    return {
        "NetworkDelayms": 5000,
        "URLPrefix": "wsman",
        "AllowUnencrypted": False,
        "Auth": {"Basic": False, "Digest": True, "Kerberos": True, "Negotiate": True,
                 "Certificate": True, "CredSSP": False},
        "DefaultPorts": {"HTTP": 5985, "HTTPS": 5986},
        "TrustedHosts": "",
    }


def normalise_trusted_hosts(text):
    """TrustedHosts is a comma-separated list; a Put may carry spaces around the commas."""
    items = [item.strip() for item in (text or "").split(",")]
    items = [item for item in items if item]
    for item in items:
        if not _HOST_PATTERN.match(item):
            raise WsmanFault(FAULT_INVALID_HOSTNAME_PATTERN, "w:InvalidParameter",
                             "TrustedHosts list contains an invalid hostname or hostname pattern: '%s'." % item)
    return ",".join(items)


class WorkstationConfig:
    """The WinRM client configuration of one workstation, with the settings Group Policy holds."""

    def __init__(self, client=None, gpo=None):
        self.client = client or default_client()
        self.gpo = dict(gpo or {})   # element name -> value the policy enforces

    # effective values: a policy value overrides the local one (reference §8)
    def value(self, name):
        if name in self.gpo:
            return self.gpo[name]
        if name in AUTH_ELEMENTS:
            return self.client["Auth"][name]
        return self.client[name]

    def snapshot(self):
        """JSON view for the control API: effective values, local values, policy."""
        effective = {name: self.value(name) for name in AUTH_ELEMENTS + CLIENT_SCALARS + ("TrustedHosts",)}
        return {
            "client": effective,
            "local": json.loads(json.dumps(self.client)),
            "gpo": {name: {"value": value, "policy": "%s\\%s" % (POLICY_KEY, POLICY_VALUES[name]),
                           "registry_data": self.policy_data(name, value)}
                    for name, value in sorted(self.gpo.items())},
        }

    @staticmethod
    def policy_data(name, value):
        if name == "TrustedHosts":
            return value
        return 1 if value else 0

    # -- XML rendering (reference §4: root namespace = the resource URI; xml:lang="en-US") --
    def _el(self, name, text, held):
        source = ' Source="GPO"' if held else ""
        if text == "":
            return "<cfg:%s%s></cfg:%s>" % (name, source, name)
        return "<cfg:%s%s>%s</cfg:%s>" % (name, source, escape(text), name)

    def auth_children(self):
        return "".join(self._el(name, bool_text(self.value(name)), name in self.gpo) for name in AUTH_ELEMENTS)

    def client_children(self):
        parts = [self._el("NetworkDelayms", str(self.client["NetworkDelayms"]), False),
                 self._el("URLPrefix", self.client["URLPrefix"], False),
                 self._el("AllowUnencrypted", bool_text(self.value("AllowUnencrypted")), "AllowUnencrypted" in self.gpo),
                 "<cfg:Auth>%s</cfg:Auth>" % self.auth_children(),
                 "<cfg:DefaultPorts>%s</cfg:DefaultPorts>" % "".join(
                     self._el(name, str(self.client["DefaultPorts"][name]), False) for name in DEFAULT_PORT_ELEMENTS),
                 self._el("TrustedHosts", self.value("TrustedHosts"), "TrustedHosts" in self.gpo)]
        return "".join(parts)

    def auth_xml(self):
        return '<cfg:Auth xmlns:cfg="%s" xml:lang="en-US">%s</cfg:Auth>' % (URI_CLIENT_AUTH, self.auth_children())

    def client_xml(self):
        return '<cfg:Client xmlns:cfg="%s" xml:lang="en-US">%s</cfg:Client>' % (URI_CLIENT, self.client_children())

    def config_xml(self, service_basic=True):
        """The whole ``config`` document (every element in the .../config namespace, as the real capture §5)."""
        service = ("<cfg:Service><cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
                   "</cfg:RootSDDL><cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations>"
                   "<cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser>"
                   "<cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections>"
                   "<cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds>"
                   "<cfg:AllowUnencrypted>true</cfg:AllowUnencrypted>"
                   "<cfg:Auth><cfg:Basic>%s</cfg:Basic><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>"
                   "<cfg:Certificate>false</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP>"
                   "<cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth>"
                   "<cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts>"
                   "<cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter>"
                   "<cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener>"
                   "<cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener>"
                   "<cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess>"
                   "</cfg:Service>" % bool_text(service_basic))
        winrs = ("<cfg:Winrs><cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess>"
                 "<cfg:IdleTimeout>7200000</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers>"
                 "<cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime>"
                 "<cfg:MaxProcessesPerShell>2147483647</cfg:MaxProcessesPerShell>"
                 "<cfg:MaxMemoryPerShellMB>2147483647</cfg:MaxMemoryPerShellMB>"
                 "<cfg:MaxShellsPerUser>2147483647</cfg:MaxShellsPerUser></cfg:Winrs>")
        return ('<cfg:Config xmlns:cfg="%s" xml:lang="en-US"><cfg:MaxEnvelopeSizekb>500</cfg:MaxEnvelopeSizekb>'
                '<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>'
                '<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests><cfg:Client>%s</cfg:Client>%s%s</cfg:Config>'
                % (URI_CONFIG, self.client_children(), service, winrs))

    def render(self, resource_uri):
        if resource_uri == URI_CLIENT_AUTH:
            return self.auth_xml()
        if resource_uri == URI_CLIENT:
            return self.client_xml()
        return self.config_xml()

    # -- Put (MS-WSMV §3.1.4.3): validate everything first, then apply, so a fault changes nothing --
    def put(self, resource_uri, body):
        """Apply a Put body (the s:Body element); returns the names of the settings that changed."""
        roots = list(body if body is not None else ())
        if len(roots) != 1:
            raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                             "A Put needs exactly one resource element in the body.")
        root = roots[0]
        expected = {URI_CLIENT_AUTH: "Auth", URI_CLIENT: "Client", URI_CONFIG: "Config"}[resource_uri]
        if local(root.tag) != expected:
            raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                             "The Put body for %s must be a %s element, not %s." % (resource_uri, expected, local(root.tag)))
        changes = {}
        if expected == "Auth":
            self._collect_auth(root, changes)
        elif expected == "Client":
            self._collect_client(root, changes)
        else:
            for child in root:
                if local(child.tag) != "Client":
                    raise WsmanFault(FAULT_UNSUPPORTED_FEATURE, "w:UnsupportedFeature",
                                     "This simulated workstation only changes the client settings (%s is read-only)."
                                     % local(child.tag))
                self._collect_client(child, changes)
        held = [name for name in changes if name in self.gpo]
        if held:
            raise WsmanFault(FAULT_GPO_CONTROLLED, "w:AccessDenied", GPO_MESSAGE % held[0])
        changed = []
        for name, value in changes.items():
            if name in AUTH_ELEMENTS:
                target = self.client["Auth"]
            elif name in DEFAULT_PORT_ELEMENTS:
                target = self.client["DefaultPorts"]
            else:
                target = self.client
            if target[name] != value:
                changed.append(name)
            target[name] = value
        return changed

    @staticmethod
    def _text(element):
        if element.get("{%s}nil" % NS_XSI, "").lower() == "true":
            return ""
        if len(element):
            raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                             "The element %s must hold a value, not child elements." % local(element.tag))
        return element.text or ""

    def _collect_auth(self, root, changes):
        for child in root:
            name = local(child.tag)
            if name not in AUTH_ELEMENTS:
                raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                                 "The element %s is not part of the client Auth configuration." % name)
            changes[name] = parse_bool(name, self._text(child))

    def _collect_client(self, root, changes):
        for child in root:
            name = local(child.tag)
            if name == "Auth":
                self._collect_auth(child, changes)
            elif name == "DefaultPorts":
                for port in child:
                    pname = local(port.tag)
                    try:
                        value = int(self._text(port))
                    except ValueError:
                        value = 0
                    if pname not in DEFAULT_PORT_ELEMENTS or not 1 <= value <= 65535:
                        raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                                         "DefaultPorts/%s must be a port number from 1 to 65535." % pname)
                    changes[pname] = value
            elif name in BOOLEAN_ELEMENTS:
                changes[name] = parse_bool(name, self._text(child))
            elif name == "NetworkDelayms":
                try:
                    value = int(self._text(child))
                except ValueError:
                    value = -1
                if value < 500:
                    raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                                     "NetworkDelayms must be an integer of at least 500.")
                changes[name] = value
            elif name == "URLPrefix":
                value = self._text(child)
                if not _URL_PREFIX.match(value) or value.startswith("/") or value.endswith("/"):
                    raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                                     "URLPrefix may hold only a-z, A-Z, 0-9, _ and / (not first or last).")
                changes[name] = value
            elif name == "TrustedHosts":
                changes[name] = normalise_trusted_hosts(self._text(child))
            else:
                raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                                 "The element %s is not part of the client configuration." % name)


# --- one workstation ---------------------------------------------------------------------------------

def initial_config(index, count):
    """Initial configuration of workstation ``index`` (0-based) among ``count`` (module docstring)."""
    config = WorkstationConfig()
    if count >= 2 and index == count - 1:
        config.gpo["Basic"] = False
    elif index % 4 == 3:
        config.client["Auth"]["Basic"] = True
    return config


class Workstation(Service):
    """The WinRM service of one simulated workstation (HTTP and HTTPS listeners share it)."""

    name = "winrm"

    def __init__(self, sim, index, count, address):
        self.sim = sim
        self.index = index
        self.count = count
        self.address = address
        self.hostname = "ws%03d" % (index + 1)
        self.machine = self.hostname.upper()
        self.user = "wsadmin"
        self.password = "Ws-%s-%s" % (self.hostname, sim.stable_uuid("workstation-password", self.hostname)[:13])
        self._lock = threading.Lock()
        self.config = initial_config(index, count)
        self.shells = {}     # ShellId -> {command ids}
        self.listeners = []
        self.ntlm_file = os.path.join(sim.state_dir, "ntlm-%s.txt" % self.hostname)

    def write_ntlm_credentials(self):
        """pyspnego's acceptor credential store (DOMAIN:USER:PASSWORD lines): the local account, bare and WSNNN\\."""
        fd = os.open(self.ntlm_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(":%s:%s\n%s:%s:%s\n" % (self.user, self.password, self.machine, self.user, self.password))

    # -- control API --
    def reset(self):
        with self._lock:
            self.config = initial_config(self.index, self.count)
            self.shells.clear()

    def set_policy(self, spec):
        """``{"Basic": false, "TrustedHosts": "*.corp", "AllowUnencrypted": null}``: null removes the policy."""
        if not isinstance(spec, dict) or not spec:
            raise BadRequest("The body must be a JSON object of setting -> policy value (null removes the policy).")
        with self._lock:
            updated = dict(self.config.gpo)
            for name, value in spec.items():
                if name not in POLICY_VALUES:
                    raise BadRequest("No client policy for '%s'; known: %s." % (name, ", ".join(sorted(POLICY_VALUES))))
                if value is None:
                    updated.pop(name, None)
                elif name == "TrustedHosts":
                    if not isinstance(value, str):
                        raise BadRequest("The TrustedHosts policy value must be a string.")
                    updated[name] = value
                elif isinstance(value, bool):
                    updated[name] = value
                else:
                    raise BadRequest("The policy value of '%s' must be true, false or null." % name)
            self.config.gpo = updated

    def set_local(self, spec):
        """Set local (non-policy) client values directly, like an administrator on the console would."""
        if not isinstance(spec, dict) or not spec:
            raise BadRequest("The body must be a JSON object of setting -> value.")
        with self._lock:
            for name, value in spec.items():
                if name in AUTH_ELEMENTS or name == "AllowUnencrypted":
                    if not isinstance(value, bool):
                        raise BadRequest("'%s' must be true or false." % name)
                    target = self.config.client["Auth"] if name in AUTH_ELEMENTS else self.config.client
                    target[name] = value
                elif name == "TrustedHosts":
                    try:
                        self.config.client[name] = normalise_trusted_hosts(str(value))
                    except WsmanFault as exc:
                        raise BadRequest(exc.message) from None
                else:
                    raise BadRequest("'%s' cannot be set here; use Basic, Digest, Kerberos, Negotiate, Certificate, "
                                     "CredSSP, AllowUnencrypted or TrustedHosts." % name)

    def snapshot(self):
        with self._lock:
            data = self.config.snapshot()
            data["shells_open"] = len(self.shells)
        data["name"] = self.hostname
        return data

    def endpoint(self):
        entry = {"name": self.hostname, "host": self.address, "port": self.listeners[0].port, "scheme": "http",
                 "path": "/wsman", "user": self.user, "password": self.password,
                 "gpo": sorted(self.config.gpo),
                 "transports": ["basic", "ntlm"] if spnego is not None else ["basic"]}
        if len(self.listeners) > 1:
            entry["https_port"] = self.listeners[1].port
        return entry

    # -- HTTP --
    def error_response(self, status, code, message, headers=None):
        """Injected faults and framework errors in the WS-Management fault shape."""
        fault = WsmanFault(FAULT_UNSUPPORTED_FEATURE if status < 500 else 2147500037,  # 0x80004005 E_FAIL
                           "w:InternalError", "%s: %s" % (code, message), sender=status < 500)
        hdrs = {"Content-Type": "application/soap+xml;charset=UTF-8"}
        hdrs.update(headers or {})
        return Response(status, fault_envelope(fault, "", self.machine), hdrs)

    def _authenticate(self, req):
        header = req.headers.get("Authorization") or ""
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _sep, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user = password = None
            # a domain-style DOMAIN\user or user@host form names the same local account
            if user is not None:
                user = user.split("\\")[-1].split("@")[0]
            if user == self.user and password == self.password:
                return True
        return False

    def handle(self, req):
        if req.path.rstrip("/").lower() != "/wsman":
            return Response(404, b"", {"Content-Length": "0"})
        if req.method != "POST":
            return Response(405, b"", {"Allow": "POST"})
        scheme = (req.headers.get("Authorization") or "").partition(" ")[0].lower()
        if scheme in ("negotiate", "ntlm") and spnego is not None:
            challenge = self._ntlm_step(req)
            if challenge is not None:
                return challenge
        ntlm = req.conn.get("ntlm")
        if ntlm is None and not self._authenticate(req):
            # Windows answers 401 with an empty body and the schemes it accepts.
            return Response(401, b"", {"WWW-Authenticate": CHALLENGE})
        body = req.body
        encrypted = ntlm is not None and (req.headers.get("Content-Type") or "").lower().startswith("multipart/encrypted")
        if encrypted:
            try:
                body = ntlm_unwrap(ntlm, body)
            except (ValueError, spnego.exceptions.SpnegoError) as exc:
                return Response(400, ("The encrypted message cannot be decrypted: %s" % exc).encode("utf-8"))
        if not body:
            # pywinrm's empty POST that sets up the NTLM context for message encryption
            return Response(200, b"", {"Content-Length": "0"})
        message = None
        try:
            message = parse_message(body)
            status, data = 200, self.dispatch(message)
        except WsmanFault as fault:
            relates = message.message_id if message is not None else ""
            status, data = fault.status, fault_envelope(fault, relates, self.machine)
        if encrypted:
            return Response(status, ntlm_wrap(ntlm, data), {"Content-Type": ENCRYPTED_CONTENT_TYPE})
        return soap_response(status, data)

    # -- NTLM (MS-WSMV §2.2.9.1.1; pyspnego as the acceptor, state per TCP connection) --
    def _ntlm_step(self, req):
        """One NTLM leg; returns the 401 challenge, a 401 refusal, or None once the context is complete."""
        scheme, _sep, value = req.headers.get("Authorization").partition(" ")
        try:
            token = base64.b64decode(value.strip())
        except ValueError:
            return Response(401, b"", {"WWW-Authenticate": CHALLENGE})
        # The acceptor finds credentials through NTLM_USER_FILE (pyspnego's only acceptor credential store);
        # each workstation has its own file, so legs of different workstations take turns.
        with _NTLM_LOCK:
            os.environ["NTLM_USER_FILE"] = self.ntlm_file
            try:
                if token[8:12] == b"\x01\x00\x00\x00" or "ntlm_pending" not in req.conn:  # NEGOTIATE_MESSAGE
                    req.conn["ntlm_pending"] = spnego.server(protocol="ntlm")
                    req.conn.pop("ntlm", None)
                context = req.conn["ntlm_pending"]
                out = context.step(token)
            except spnego.exceptions.SpnegoError:
                req.conn.pop("ntlm_pending", None)
                return Response(401, b"", {"WWW-Authenticate": CHALLENGE})
        if not context.complete:
            return Response(401, b"", {"WWW-Authenticate": "%s %s" % (scheme, base64.b64encode(out).decode("ascii"))})
        req.conn["ntlm"] = req.conn.pop("ntlm_pending")
        return None

    def dispatch(self, msg):
        uri = msg.resource_uri
        host = self.hostname
        counters = self.sim.counters
        if uri in (URI_CONFIG, URI_CLIENT, URI_CLIENT_AUTH):
            if msg.action == ACTION_GET:
                counters.incr("wsman", (host, "get"))
                with self._lock:
                    body = self.config.render(uri)
                return envelope(NS_TRANSFER + "/GetResponse", msg.message_id, body)
            if msg.action == ACTION_PUT:
                counters.incr("wsman", (host, "put"))
                with self._lock:
                    changed = self.config.put(uri, msg.body)
                    body = self.config.render(uri)
                if changed:
                    self.sim.record_write("winrm", "Put", "%s %s" % (host, uri), {"changed": changed})
                return envelope(NS_TRANSFER + "/PutResponse", msg.message_id, body)
            raise WsmanFault(FAULT_INVALID_ACTION, "a:ActionNotSupported",
                             "The action %s is not supported on %s." % (msg.action, uri))
        if uri == URI_SHELL_CMD:
            return self._shell(msg)
        # Reference §1/§9: an alias such as winrm/config/client (or any unknown URI) is not in the catalog.
        raise WsmanFault(FAULT_INVALID_RESOURCE_URI, "a:DestinationUnreachable",
                         "The WS-Management service cannot process the request. The resource URI (%s) was not found "
                         "in the WS-Management catalog. The catalog contains the metadata that describes resources, "
                         "or logical endpoints." % uri)

    # -- WinRS (MS-WSMV §3.1.4.5 ff.): enough for Ansible's winrm connection --
    def _shell_id(self, msg):
        shell_id = msg.selectors.get("ShellId")
        with self._lock:
            if shell_id not in self.shells:
                raise WsmanFault(FAULT_INVALID_SELECTORS, "w:InvalidSelectors",
                                 "The request for the Windows Remote Shell with ShellId %s failed because the shell "
                                 "was not found on the server." % shell_id)
        return shell_id

    def _shell(self, msg):
        counters = self.sim.counters
        host = self.hostname
        if msg.action == ACTION_CREATE:
            counters.incr("wsman", (host, "shell_create"))
            shell_id = str(uuid.uuid4()).upper()
            with self._lock:
                self.shells[shell_id] = set()
            body = ('<x:ResourceCreated><a:Address>http://%s:5985/wsman</a:Address><a:ReferenceParameters>'
                    '<w:ResourceURI>%s</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector>'
                    '</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>'
                    '<rsp:Shell><rsp:ShellId>%s</rsp:ShellId><rsp:ResourceUri>%s</rsp:ResourceUri>'
                    '<rsp:Owner>%s</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP>'
                    '<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>'
                    '<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>'
                    % (self.machine.lower(), URI_SHELL_CMD, shell_id, shell_id, URI_SHELL_CMD, escape(self.user)))
            return envelope(NS_TRANSFER + "/CreateResponse", msg.message_id, body)
        shell_id = self._shell_id(msg)
        if msg.action == ACTION_DELETE:
            counters.incr("wsman", (host, "shell_delete"))
            with self._lock:
                self.shells.pop(shell_id, None)
            return envelope(NS_TRANSFER + "/DeleteResponse", msg.message_id, "")
        if msg.action == ACTION_COMMAND:
            counters.incr("wsman", (host, "command"))
            command_id = str(uuid.uuid4()).upper()
            with self._lock:
                self.shells[shell_id].add(command_id)
            body = "<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>" % command_id
            return envelope(NS_SHELL + "/CommandResponse", msg.message_id, body)
        if msg.action == ACTION_RECEIVE:
            command_id = self._command_id(msg, "DesiredStream")
            stderr = base64.b64encode(b"simulated workstation: commands are not run here\r\n").decode("ascii")
            body = ('<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>'
                    '<rsp:Stream Name="stderr" CommandId="%s">%s</rsp:Stream>'
                    '<rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>'
                    '<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>1</rsp:ExitCode></rsp:CommandState>'
                    '</rsp:ReceiveResponse>' % (command_id, command_id, stderr, command_id, command_id, COMMAND_STATE_DONE))
            return envelope(NS_SHELL + "/ReceiveResponse", msg.message_id, body)
        if msg.action == ACTION_SEND:
            self._command_id(msg, "Stream")
            return envelope(NS_SHELL + "/SendResponse", msg.message_id, "<rsp:SendResponse/>")
        if msg.action == ACTION_SIGNAL:
            command_id = self._command_id(msg, "Signal")
            with self._lock:
                self.shells.get(shell_id, set()).discard(command_id)
            return envelope(NS_SHELL + "/SignalResponse", msg.message_id, "<rsp:SignalResponse/>")
        raise WsmanFault(FAULT_INVALID_ACTION, "a:ActionNotSupported",
                         "The action %s is not supported on %s." % (msg.action, URI_SHELL_CMD))

    @staticmethod
    def _command_id(msg, element):
        for node in (msg.body.iter() if msg.body is not None else ()):
            if local(node.tag) == element and node.get("CommandId"):
                return node.get("CommandId")
        raise WsmanFault(FAULT_SCHEMA_VALIDATION, "w:SchemaValidationError",
                         "The request has no %s element with a CommandId." % element)


# --- the fleet ----------------------------------------------------------------------------------------

class Workstations:
    """N simulated workstations, each with its own HTTP and HTTPS port on ``address``."""

    def __init__(self, sim, count, address, https=True):
        self.sim = sim
        self.address = address
        self.https = https and sim.tls_context is not None
        self.items = [Workstation(sim, index, count, address) for index in range(int(count))]
        self.by_name = {ws.hostname: ws for ws in self.items}

    def start(self):
        # 200 workstations are 400 listeners: bind and start them side by side.
        def bind(ws):
            if spnego is not None:
                ws.write_ntlm_credentials()
            ws.listeners = [Listener(self.sim, self.address, 0, [ws], tls=False)]
            if self.https:
                ws.listeners.append(Listener(self.sim, self.address, 0, [ws], tls=True))
            for listener in ws.listeners:
                listener.start()

        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            list(pool.map(bind, self.items))
        return self

    def stop(self):
        # Each Listener.stop() waits up to one poll interval for its serve_forever loop; stop them side by
        # side so 200 workstations (400 listeners) stop in about a second.
        listeners = [listener for ws in self.items for listener in ws.listeners]
        threads = [threading.Thread(target=listener.stop, daemon=True) for listener in listeners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    def endpoints(self):
        return [ws.endpoint() for ws in self.items]

    def control(self, req):
        """Control routes (JSON), documented in README.md:

        GET  /workstations                        -> every workstation's snapshot
        GET  /workstations/<name>/config          -> effective client values, local values, policies
        POST /workstations/<name>/reset           -> back to the initial state
        POST /workstations/reset                  -> every workstation back to its initial state
        POST /workstations/<name>/gpo  {"Basic": false, "TrustedHosts": null, ...}   (null removes a policy)
        POST /workstations/<name>/config {"Basic": true, "TrustedHosts": "a,b", ...} (local values)
        """
        parts = [p for p in req.path.split("/") if p]
        if not parts or parts[0] != "workstations":
            return None
        if len(parts) == 1 and req.method == "GET":
            return Response.json(200, {"workstations": [ws.snapshot() for ws in self.items]})
        if len(parts) == 2 and parts[1] == "reset" and req.method == "POST":
            for ws in self.items:
                ws.reset()
            return Response.json(200, {"reset": [ws.hostname for ws in self.items]})
        if len(parts) != 3:
            return None
        ws = self.by_name.get(parts[1])
        if ws is None:
            return Response.json(404, {"error": {"code": "NotFound", "message": "No workstation named '%s'." % parts[1]}})
        action = parts[2]
        if action == "config" and req.method == "GET":
            return Response.json(200, ws.snapshot())
        if action == "config" and req.method == "POST":
            ws.set_local(req.json())
            return Response.json(200, ws.snapshot())
        if action == "reset" and req.method == "POST":
            ws.reset()
            return Response.json(200, ws.snapshot())
        if action == "gpo" and req.method == "POST":
            ws.set_policy(req.json())
            return Response.json(200, ws.snapshot())
        return None
