# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated Entra ID directory: tenants, app registrations (with their credentials) and users.

Identifiers, secrets and passwords derive from the seed (``Sim.stable_uuid``), so the same seed gives the
same tenant; the key pairs of the certificates are fresh per run (they are written to the state dir).
"""

from __future__ import annotations

import datetime
import hashlib
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .core import ROLE_EXCHANGE_ADMINISTRATOR, ROLE_GLOBAL_ADMINISTRATOR

# The ExchangeOnlineManagement (EXO V3) module's public client id and the legacy RPS one
# (reference exchange-online-rest.md §12): delegated flows use them when no app_id is given.
EXO_PUBLIC_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"
EXO_LEGACY_CLIENT_ID = "a0c73c16-a7e3-4564-9a95-2bdf47383716"

EXCHANGE_APP_ROLES = frozenset(["Exchange.ManageAsApp"])
GRAPH_APP_ROLES = frozenset(["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"])
# Delegated permissions (scp) per resource for the users' sign-ins.
DELEGATED_SCOPES = {"exchange": "Exchange.Manage", "scc": "Exchange.Manage",
                    "graph": "Policy.Read.All Policy.ReadWrite.ConditionalAccess"}

FULL_ROLES = ("Exchange.ManageAsApp", "Policy.Read.All", "Policy.ReadWrite.ConditionalAccess")
# name -> (app roles, directory roles, what is wrong with it)
APP_SPECS = {
    "full": (FULL_ROLES, (ROLE_EXCHANGE_ADMINISTRATOR,), None),
    "no_manage_as_app": (("Policy.Read.All",), (ROLE_EXCHANGE_ADMINISTRATOR,), None),
    "no_directory_role": (FULL_ROLES, (), None),
    "no_graph_permission": (("Exchange.ManageAsApp",), (ROLE_EXCHANGE_ADMINISTRATOR,), None),
    "expired_secret": (FULL_ROLES, (ROLE_EXCHANGE_ADMINISTRATOR,), "expired_secret"),
    "unregistered_certificate": (FULL_ROLES, (ROLE_EXCHANGE_ADMINISTRATOR,), "unregistered_certificate"),
}
# name -> (local part, directory roles, mfa_required, federated)
USER_SPECS = {
    "admin": ("admin", (ROLE_EXCHANGE_ADMINISTRATOR, ROLE_GLOBAL_ADMINISTRATOR), False, False),
    "mfa_admin": ("mfa.admin", (ROLE_EXCHANGE_ADMINISTRATOR,), True, False),
    "no_exchange_role": ("helpdesk", (), False, False),
    "federated": ("federated.user", (ROLE_EXCHANGE_ADMINISTRATOR,), False, True),
}


class Tenant:
    def __init__(self, tenant_id, domains, display_name):
        self.tenant_id = tenant_id
        self.domains = list(domains)
        self.name = self.domains[0]
        self.display_name = display_name


class Certificate:
    """A certificate and its thumbprints (SHA-1 for x5t, SHA-256 for x5t#S256)."""

    def __init__(self, cert):
        self.cert = cert
        self.public_key = cert.public_key()
        self.sha1 = cert.fingerprint(hashes.SHA1())  # nosec - the x5t thumbprint is SHA-1 by definition
        self.sha256 = cert.fingerprint(hashes.SHA256())
        self.thumbprint = self.sha1.hex().upper()


class App:
    def __init__(self, name, app_id, display_name, roles, wids, secret=None, secret_expired=False, public=False):
        self.name = name
        self.app_id = app_id
        self.display_name = display_name
        self.roles = tuple(roles)
        self.wids = tuple(wids)
        self.secret = secret
        self.secret_expired = secret_expired
        self.public = public
        self.certificates = []  # registered: Certificate
        self.tenants = set()  # tenant ids with a service principal (consent)
        self.files = {}  # endpoints.json entries for the credential files

    def certificate(self, sha1=None, sha256=None):
        for cert in self.certificates:
            if (sha256 is not None and cert.sha256 == sha256) or (sha1 is not None and cert.sha1 == sha1):
                return cert
        return None


class User:
    def __init__(self, name, upn, oid, password, wids, mfa_required, federated, tenant_id, display_name):
        self.name = name
        self.upn = upn
        self.oid = oid
        self.password = password
        self.wids = tuple(wids)
        self.mfa_required = mfa_required
        self.federated = federated
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.partner_tenants = set()  # delegated (partner) access to customer tenants


def _make_certificate(common_name, days=365):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    return key, cert


def _write(path, data, mode=0o600):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


class Directory:
    """Tenants, apps and users of one simulator instance."""

    def __init__(self, sim, customer_organization="fabrikam.onmicrosoft.com"):
        self.sim = sim
        self.home = Tenant(sim.tenant_id, [sim.organization, "federated.contoso.com"], "Contoso")
        self.federated_domain = "federated.contoso.com"
        self.customer = Tenant(sim.stable_uuid("tenant", customer_organization), [customer_organization], "Fabrikam")
        self.tenants = {t.tenant_id: t for t in (self.home, self.customer)}
        self.apps = {}
        self.users = {}
        self._build_apps()
        self._build_users()
        self.managed_identity = {
            "system_client_id": sim.stable_uuid("mi", "system"),
            "user_assigned_client_id": sim.stable_uuid("mi", "user-assigned"),
            "header": hashlib.sha256(("%d|identity-header" % sim.seed).encode()).hexdigest()[:32],
        }

    def _secret(self, *parts):
        digest = hashlib.sha256(("%d|secret|" % self.sim.seed + "|".join(parts)).encode("utf-8")).hexdigest()
        return "Sim~%s.%s" % (digest[:20], digest[20:36])

    def _build_apps(self):
        for name, (roles, wids, flaw) in APP_SPECS.items():
            app = App(name, self.sim.stable_uuid("app", name), "Simulator %s" % name, roles, wids,
                      secret=self._secret("app", name), secret_expired=(flaw == "expired_secret"))
            app.tenants.add(self.home.tenant_id)
            if name == "full":
                app.tenants.add(self.customer.tenant_id)
            app.files = self._write_credentials(app, register=(flaw != "unregistered_certificate"))
            self.apps[name] = app
        public = App("public_client", EXO_PUBLIC_CLIENT_ID, "Microsoft Exchange REST API Based PowerShell", (), (), public=True)
        legacy = App("legacy_public_client", EXO_LEGACY_CLIENT_ID, "Exchange Online Remote PowerShell", (), (), public=True)
        for app in (public, legacy):
            app.tenants.update(self.tenants)
            self.apps[app.name] = app

    def _write_credentials(self, app, register):
        key, cert = _make_certificate("sim-%s" % app.name)
        if register:
            app.certificates.append(Certificate(cert))
        base = os.path.join(self.sim.state_dir, "app-%s" % app.name)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        password = self._secret("certificate-password", app.name)[4:20]
        encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(password.encode("utf-8")))
        pfx = pkcs12.serialize_key_and_certificates(app.name.encode("utf-8"), key, cert, None,
                                                    serialization.BestAvailableEncryption(password.encode("utf-8")))
        _write(base + ".pem", plain + cert_pem)
        _write(base + "-encrypted.pem", encrypted + cert_pem)
        _write(base + ".pfx", pfx)
        _write(base + "-cert.pem", cert_pem, 0o644)
        return {"certificate_path": base + ".pem", "certificate_pfx_path": base + ".pfx",
                "certificate_pfx_password": password, "certificate_encrypted_path": base + "-encrypted.pem",
                "certificate_encrypted_password": password, "public_certificate_path": base + "-cert.pem",
                "thumbprint": Certificate(cert).thumbprint}

    def _build_users(self):
        for name, (local, wids, mfa, federated) in USER_SPECS.items():
            domain = self.federated_domain if federated else self.sim.organization
            user = User(name, "%s@%s" % (local, domain), self.sim.stable_uuid("user", name),
                        self._secret("password", name)[4:24] + "!a1", wids, mfa, federated,
                        self.home.tenant_id, local.replace(".", " ").title())
            self.users[name] = user
        self.users["admin"].partner_tenants.add(self.customer.tenant_id)
        self.users["mfa_admin"].partner_tenants.add(self.customer.tenant_id)

    # lookups
    def tenant(self, name_or_id):
        """The Tenant for a GUID or a verified domain, else None."""
        if not name_or_id:
            return None
        key = str(name_or_id).lower()
        for tenant in self.tenants.values():
            if key == tenant.tenant_id or key in tenant.domains:
                return tenant
        return None

    def tenant_id(self, name_or_id):
        tenant = self.tenant(name_or_id)
        return tenant.tenant_id if tenant else None

    def app_by_id(self, app_id):
        key = str(app_id or "").lower()
        for app in self.apps.values():
            if app.app_id == key:
                return app
        return None

    def user_by_upn(self, upn):
        key = str(upn or "").lower()
        for user in self.users.values():
            if user.upn.lower() == key:
                return user
        return None

    def user(self, name_or_upn):
        return self.users.get(name_or_upn) or self.user_by_upn(name_or_upn)

    def service_principal_id(self, app, tenant_id):
        return self.sim.stable_uuid("sp", app.app_id, tenant_id)

    # endpoints.json
    def endpoints(self):
        apps = {}
        for name, app in self.apps.items():
            entry = {"app_id": app.app_id, "roles": list(app.roles), "directory_roles": list(app.wids),
                     "public_client": app.public}
            if app.secret:
                entry["client_secret"] = app.secret
                entry["secret_expired"] = app.secret_expired
            entry.update(app.files)
            entry["consented_tenants"] = sorted(app.tenants)
            apps[name] = entry
        users = {name: {"user_principal_name": u.upn, "password": u.password, "mfa_required": u.mfa_required,
                        "federated": u.federated, "object_id": u.oid, "directory_roles": list(u.wids),
                        "partner_tenants": sorted(u.partner_tenants)}
                 for name, u in self.users.items()}
        return apps, users
