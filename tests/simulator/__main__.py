# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m tests.simulator --state-dir DIR ...``: start the simulator, or render config from a running one."""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time

from . import tls
from .control import ControlService
from .core import Listener, Sim
from .directory import EXO_PUBLIC_CLIENT_ID
from .entra import EntraService

OPTIONAL_MODULES = ("exchange", "graph", "winrm")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.simulator",
                                     description="Tenant simulator: Entra ID, Exchange Online REST, Microsoft Graph and "
                                                 "WinRM workstations on loopback addresses.")
    parser.add_argument("--state-dir", required=True, help="directory (created by the caller) for endpoints.json, ca.pem, "
                                                           "credentials and simulator.pid")
    parser.add_argument("--mailboxes", type=int, default=2500, help="mailboxes in the generated tenant (default 2500)")
    parser.add_argument("--workstations", type=int, default=2, help="simulated WinRM workstations (default 2)")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds (default 3600)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated tenant (default 1)")
    parser.add_argument("--device-code-polls", type=int, default=3,
                        help="approve a device code as mfa_admin after this many polls; 0: only through the control API")
    parser.add_argument("--render-config", metavar="PATH",
                        help="write integration_config.yml from the running instance's endpoints.json and exit")
    parser.add_argument("--render-inventory", metavar="PATH",
                        help="write a WinRM inventory (group admin_workstations) from endpoints.json and exit")
    parser.add_argument("--partial", action="store_true",
                        help="run without the exchange/graph/winrm modules when they are missing (simulator development)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    for name in ("mailboxes", "workstations", "device_code_polls"):
        if getattr(args, name) < 0:
            parser.error("--%s must be 0 or more" % name.replace("_", "-"))
    if args.token_lifetime < 1:
        parser.error("--token-lifetime must be at least 1 second")
    return args


def load_endpoints(state_dir, wait=0.0):
    path = os.path.join(state_dir, "endpoints.json")
    deadline = time.time() + wait
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise SystemExit("simulator: %s does not exist: start the simulator with --state-dir %s first" % (path, state_dir)) from None


def render_config(endpoints, state_dir, path):
    """integration_config.yml: every top-level key K becomes exo_K, plus exo_simulator and its state dir."""
    import yaml  # ansible-core's dependency; only needed when rendering
    config = {"exo_%s" % key: value for key, value in endpoints.items()}
    config["exo_simulator"] = True
    config["exo_simulator_state_dir"] = os.path.abspath(state_dir)
    write_text(path, "# Rendered by python -m tests.simulator --render-config; do not edit.\n"
               + yaml.safe_dump(config, default_flow_style=False, sort_keys=True))


def render_inventory(endpoints, path):
    """A YAML inventory with group admin_workstations (one host per simulated workstation)."""
    import yaml
    hosts = {}
    for ws in endpoints.get("workstations", []):
        host = {"ansible_host": ws["host"], "ansible_port": ws["port"], "ansible_connection": "winrm",
                "ansible_winrm_scheme": ws.get("scheme", "http"), "ansible_winrm_transport": ws.get("transport", "basic"),
                "ansible_user": ws["user"], "ansible_password": ws["password"],
                "exo_simulator_gpo": list(ws.get("gpo", []))}
        if ws.get("scheme") == "https":
            host["ansible_winrm_server_cert_validation"] = "validate"
            host["ansible_winrm_ca_trust_path"] = endpoints["ca_path"]
        hosts[ws["name"]] = host
    inventory = {"all": {"children": {"admin_workstations": {"hosts": hosts}}}}
    write_text(path, "# Rendered by python -m tests.simulator --render-inventory; do not edit.\n"
               + yaml.safe_dump(inventory, default_flow_style=False, sort_keys=True))


def write_text(path, text, mode=0o644):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def load_optional(partial, here=None):
    """Import exchange, graph and winrm; a missing one is a loud error unless --partial."""
    modules = {}
    here = here or os.path.dirname(os.path.abspath(__file__))
    for name in OPTIONAL_MODULES:
        if not os.path.exists(os.path.join(here, name + ".py")):
            if partial:
                sys.stderr.write("simulator: tests/simulator/%s.py is missing; running without it (--partial)\n" % name)
                modules[name] = None
                continue
            raise SystemExit("simulator: tests/simulator/%s.py is missing: the %s service cannot start "
                             "(use --partial to run without it while developing the simulator)" % (name, name))
        modules[name] = importlib.import_module("%s.%s" % (__package__, name))
    return modules


def candidate_blocks(count=64):
    """Blocks 127.a.b.c..c+3 (c = 4k+1), from the pid and randomness so instances rarely collide."""
    rng = random.Random((os.getpid() << 20) ^ int.from_bytes(os.urandom(8), "big"))
    for dummy in range(count):
        a, b, c = rng.randint(1, 254), rng.randint(0, 255), 4 * rng.randint(0, 62) + 1
        yield ["127.%d.%d.%d" % (a, b, c + i) for i in range(4)]


def block_is_free(addresses):
    socks = []
    try:
        for address in addresses:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((address, 443))
        return True
    except PermissionError:
        raise SystemExit("simulator: binding port 443 of %s was refused: run as root, or allow it with "
                         "'sysctl net.ipv4.ip_unprivileged_port_start=443' or CAP_NET_BIND_SERVICE" % addresses[0]) from None
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
            return False
        raise
    finally:
        for sock in socks:
            sock.close()


class Simulator:
    """Everything one instance runs; ``start()`` binds, ``stop()`` shuts down."""

    def __init__(self, args, modules):
        self.args = args
        self.modules = modules
        self.listeners = []
        self.workstations = None
        self.endpoints = {}

    def build(self, addresses):
        args = self.args
        roles = {"entra": addresses[0], "exchange": addresses[0], "graph": addresses[1], "scc": addresses[2],
                 "scc_regional": addresses[3]}
        sim = Sim(args.state_dir, seed=args.seed, token_lifetime=args.token_lifetime, addresses=roles,
                  mailboxes=args.mailboxes, device_code_polls=args.device_code_polls, verbose=args.verbose)
        self.sim = sim
        ca_path, cert_path, key_path = tls.generate(args.state_dir, addresses)
        self.ca_path = ca_path
        sim.tls_context = tls.server_context(cert_path, key_path)
        self.entra = EntraService(sim)
        exchange = graph = scc = scc_regional = None
        exchange_mod, graph_mod = self.modules["exchange"], self.modules["graph"]
        if exchange_mod is not None:
            exchange = exchange_mod.ExchangeService(sim)
            scc = exchange_mod.ComplianceService(sim, sim.origin("scc_regional"))
            scc_regional = exchange_mod.ComplianceRegionalService(sim)
        if graph_mod is not None:
            graph = graph_mod.GraphService(sim)
        self.services = {"exchange": exchange, "scc": scc, "scc_regional": scc_regional, "graph": graph}
        plan = [(addresses[0], [self.entra] + ([exchange] if exchange else [])),
                (addresses[1], [graph] if graph else []), (addresses[2], [scc] if scc else []),
                (addresses[3], [scc_regional] if scc_regional else [])]
        for address, services in plan:
            self.listeners.append(Listener(sim, address, 443, services))
        if self.modules["winrm"] is not None and args.workstations > 0:
            self.workstations = self.modules["winrm"].Workstations(sim, args.workstations, addresses[0])
        self.control = ControlService(sim, self.entra, self.endpoints, exchange=(exchange, scc, scc_regional),
                                      graph=graph, workstations=self.workstations)
        self.control_listener = Listener(sim, "127.0.0.1", 0, [self.control], tls=False)
        self.listeners.append(self.control_listener)

    def start(self):
        last_error = None
        for addresses in candidate_blocks():
            if not block_is_free(addresses):
                continue
            try:
                self.build(addresses)
                break
            except OSError as exc:  # lost a race for the block: try another
                if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    raise
                last_error = exc
                self.stop()
                self.listeners = []
        else:
            raise SystemExit("simulator: no free block of four loopback addresses on port 443 (%s)" % last_error)
        for listener in self.listeners:
            listener.start()
        if self.workstations is not None:
            self.workstations.start()
        self.endpoints.update(self.describe())
        write_text(os.path.join(self.args.state_dir, "endpoints.json"), json.dumps(self.endpoints, indent=2, sort_keys=True) + "\n")

    def describe(self):
        sim = self.sim
        directory = sim.directory
        apps, users = directory.endpoints()
        control_uri = "http://127.0.0.1:%d" % self.control_listener.port
        mi = directory.managed_identity
        return {
            "organization": sim.organization, "tenant_id": sim.tenant_id,
            "authority": "%s/%s" % (sim.origin("entra"), sim.tenant_id),
            "connection_uri": sim.origin("exchange"),
            "security_compliance_uri": sim.origin("scc"),
            "security_compliance_regional_uri": sim.origin("scc_regional"),
            "graph_uri": sim.origin("graph"),
            "ca_path": os.path.abspath(self.ca_path), "control_uri": control_uri,
            "apps": apps, "users": users,
            "public_client_id": EXO_PUBLIC_CLIENT_ID,
            "workstations": self.workstations.endpoints() if self.workstations is not None else [],
            "managed_identity": {"endpoint": control_uri + "/msi/token", "header": mi["header"],
                                 "user_assigned_client_id": mi["user_assigned_client_id"],
                                 "system_assigned_client_id": mi["system_client_id"]},
            "customer_organization": directory.customer.name, "customer_tenant_id": directory.customer.tenant_id,
            "federated_domain": directory.federated_domain,
            "addresses": dict(sim.addresses), "seed": sim.seed, "mailboxes": sim.mailboxes,
            "token_lifetime": sim.token_lifetime, "device_code_polls": sim.device_code_polls,
            "services": sorted(["entra"] + [n for n, m in self.modules.items() if m is not None]),
            "pid": os.getpid(),
        }

    def stop(self):
        if self.workstations is not None:
            try:
                self.workstations.stop()
            except Exception as exc:  # pylint: disable=broad-except
                sys.stderr.write("simulator: stopping workstations failed: %s\n" % exc)
        for listener in self.listeners:
            listener.stop()


def main(argv=None):
    args = parse_args(argv)
    state_dir = args.state_dir
    if args.render_config or args.render_inventory:
        endpoints = load_endpoints(state_dir, wait=30.0)
        if args.render_config:
            render_config(endpoints, state_dir, args.render_config)
        if args.render_inventory:
            render_inventory(endpoints, args.render_inventory)
        return 0
    os.makedirs(state_dir, exist_ok=True)
    try:  # a caller waiting for endpoints.json must not read a previous instance's
        os.unlink(os.path.join(state_dir, "endpoints.json"))
    except FileNotFoundError:
        pass
    stop = threading.Event()

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        stop.set()  # a second signal while stopping changes nothing

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    modules = load_optional(args.partial)
    simulator = Simulator(args, modules)
    simulator.start()
    pid_path = os.path.join(state_dir, "simulator.pid")
    write_text(pid_path, "%d\n" % os.getpid())
    ready = "simulator ready: %s (control %s)\n" % (os.path.join(state_dir, "endpoints.json"), simulator.endpoints["control_uri"])
    sys.stdout.write(ready)
    sys.stdout.flush()
    while not stop.wait(1.0):
        pass
    simulator.stop()
    try:
        with open(pid_path, encoding="utf-8") as handle:
            if handle.read().strip() == str(os.getpid()):
                os.unlink(pid_path)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
