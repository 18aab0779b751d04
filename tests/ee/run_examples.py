# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every module's EXAMPLES and the guides' and role READMEs' playbooks against the tenant simulator.

The examples are written for a real tenant (contoso.onmicrosoft.com, an app id, a certificate under
/etc). Only the *connection* is pointed at the simulator: in every task of a collection module and in
every ``module_defaults`` for the ``exo`` group, the connection options (organization, app_id,
client_secret, certificate_path, certificate_password, user_principal_name, password,
managed_identity_client_id, delegated_organization) get the simulator's values, and the endpoint
overrides (connection_uri, azure_ad_authorization_endpoint_uri, graph_uri, ca_path) are added. All
other options are run as written, in check mode (so examples that change things only predict), through
ansible-runner as AWX would run them. Device code examples are approved through the simulator's
control API while they wait; managed identity examples see the simulator's managed identity
endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER, as on Azure App Service).

Usage: python tests/ee/run_examples.py INTEGRATION_CONFIG [WORK_DIR]
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NS = "m365ops.exchange_online"
GROUP = "group/%s.exo" % NS

sys.path.insert(0, str(ROOT / "tests" / "docs"))
from rst_blocks import block  # noqa: E402  (tests/docs/rst_blocks.py)

CONNECTION_KEYS = ("organization", "app_id", "client_secret", "certificate_path", "certificate", "certificate_password",
                   "user_principal_name", "password", "managed_identity_client_id", "delegated_organization",
                   "connection_uri", "azure_ad_authorization_endpoint_uri", "graph_uri", "ca_path",
                   "access_token", "token_cache_path", "validate_certs")


def fail(msg):
    print("FAIL: %s" % msg)
    sys.exit(1)


def markdown_yaml_blocks(path):
    """The ```yaml fenced blocks of a Markdown file."""
    blocks, current = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if current is None and line.strip() in ("```yaml", "```yml"):
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def module_names():
    return sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def examples_of(module):
    tree = ast.parse((ROOT / "plugins" / "modules" / ("%s.py" % module)).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            return yaml.safe_load(node.value.value) or []
    return []


class Simulator:
    """The simulator's values an example's connection options are replaced with."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.app = cfg["exo_apps"]["full"]
        self.users = cfg["exo_users"]

    def user(self, upn):
        for user in self.users.values():
            if upn and user["user_principal_name"].lower() == str(upn).lower():
                return user
        return self.users["admin"]

    def connection(self, given):
        """The connection options of one task (or module_defaults entry), pointed at the simulator."""
        cfg, app = self.cfg, self.app
        out = {k: v for k, v in given.items() if k not in CONNECTION_KEYS}
        method = given.get("auth_method")
        if "organization" in given or method not in ("password", "device_code"):
            out["organization"] = cfg["exo_organization"]
        if given.get("delegated_organization"):
            out["delegated_organization"] = cfg["exo_customer_organization"]
        if "app_id" in given:
            out["app_id"] = app["app_id"]
        if "client_secret" in given:
            out["client_secret"] = app["client_secret"]
        if "certificate" in given:
            with open(app["certificate_path"]) as f:
                out["certificate"] = f.read()
        if "certificate_path" in given:
            if str(given["certificate_path"]).lower().endswith((".pfx", ".p12")):
                out["certificate_path"] = app["certificate_pfx_path"]
                out["certificate_password"] = app["certificate_pfx_password"]
            elif "certificate_password" in given:
                out["certificate_path"] = app["certificate_encrypted_path"]
                out["certificate_password"] = app["certificate_encrypted_password"]
            else:
                out["certificate_path"] = app["certificate_path"]
        if "user_principal_name" in given:
            out["user_principal_name"] = self.user(given["user_principal_name"])["user_principal_name"]
        if "password" in given:
            out["password"] = self.user(given.get("user_principal_name"))["password"]
        if "managed_identity_client_id" in given:
            out["managed_identity_client_id"] = cfg["exo_managed_identity"]["user_assigned_client_id"]
        scc = given.get("service") == "security_compliance"
        out["connection_uri"] = cfg["exo_security_compliance_uri"] if scc else cfg["exo_connection_uri"]
        out["azure_ad_authorization_endpoint_uri"] = cfg["exo_authority"]
        out["graph_uri"] = cfg["exo_graph_uri"]
        out["ca_path"] = cfg["exo_ca_path"]
        return out


CREDENTIAL_KEYS = ("auth_method", "client_secret", "certificate_path", "certificate", "password", "access_token",
                   "managed_identity_client_id", "user_principal_name")


def rewrite(node, sim, modules, defaults=False):
    """Point every collection module task and exo module_defaults of a task/play list at the simulator.

    A task without credentials of its own relies on module_defaults or EXO_* variables (the examples
    are snippets of a play); where no module_defaults for the group is in scope, it gets the
    simulator's app-only certificate sign-in, as a play's module_defaults would give it.
    """
    if isinstance(node, list):
        return [rewrite(item, sim, modules, defaults) for item in node]
    if not isinstance(node, dict):
        return node
    defaults = defaults or GROUP in (node.get("module_defaults") or {})
    out = {}
    for key, value in node.items():
        if key in modules and modules[key] != "exo_winrm_client_config" and isinstance(value, (dict, type(None))):
            args = dict(value or {})
            if not defaults and not any(k in args for k in CREDENTIAL_KEYS):
                args.update(organization=None, app_id=None, certificate_path="app.pem")
            out[key] = sim.connection(args)
        elif key == "module_defaults" and isinstance(value, dict):
            out[key] = {g: (sim.connection(v) if g in (GROUP, "group/exo") else v) for g, v in value.items()}
        elif key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            out[key] = rewrite(value, sim, modules, defaults)
        else:
            out[key] = value
    return out


def as_plays(items, hosts):
    """EXAMPLES mix tasks and plays: consecutive tasks become one play on ``hosts``."""
    plays, tasks = [], []
    for item in items:
        if isinstance(item, dict) and "hosts" in item:
            if tasks:
                plays.append({"name": "Examples", "hosts": hosts, "gather_facts": False, "tasks": tasks})
                tasks = []
            play = dict(item)
            play["hosts"] = hosts
            play.setdefault("gather_facts", False)
            plays.append(play)
        else:
            tasks.append(item)
    if tasks:
        plays.append({"name": "Examples", "hosts": hosts, "gather_facts": False, "tasks": tasks})
    return plays


def device_code_users(node, sim):
    """Simulator user names of the device code sign-ins in the plays (the people who would approve them)."""
    found = []
    if isinstance(node, list):
        for item in node:
            found += device_code_users(item, sim)
    elif isinstance(node, dict):
        if node.get("auth_method") == "device_code" or ("user_principal_name" in node and "password" not in node):
            upn = str(node.get("user_principal_name", "")).lower()
            found += [name for name, user in sim.users.items() if user["user_principal_name"].lower() == upn]
        for value in node.values():
            found += device_code_users(value, sim)
    return sorted(set(found))


class Approver(threading.Thread):
    """Approves the device codes a job requests (the person at the browser) while the job runs.

    Only codes that are pending are approved, each by its user code, so nothing is left approved
    in advance for a later sign-in on the shared simulator.
    """

    def __init__(self, control_uri, users):
        super().__init__(daemon=True)
        self.control = control_uri.rstrip("/")
        self.users = users
        self.stop = threading.Event()

    def run(self):
        while self.users and not self.stop.wait(0.5):
            try:
                with urllib.request.urlopen(self.control + "/device-codes", timeout=5) as resp:
                    codes = json.load(resp).get("device_codes") or []
                for code in codes:
                    if code.get("approved") is None:
                        body = json.dumps({"user": self.users[0], "user_code": code["user_code"]}).encode()
                        request = urllib.request.Request(self.control + "/device-codes/approve", data=body,
                                                         method="POST", headers={"Content-Type": "application/json"})
                        urllib.request.urlopen(request, timeout=5).close()
            except OSError:
                pass


def run_job(name, plays, inventory, limit, sim, work):
    pdd = work / name
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    (pdd / "env").mkdir()
    (pdd / "project" / "examples.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    mi = sim.cfg["exo_managed_identity"]
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        # Azure App Service's managed identity variables, read by msal (simulator's endpoint).
        "IDENTITY_ENDPOINT": mi["endpoint"], "IDENTITY_HEADER": mi["header"],
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXO_")}
    env["PATH"] = "%s%s%s" % (BIN, os.pathsep, env.get("PATH", ""))
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT.parents[2]))
    env["HOME"] = str(pdd / "home")
    (pdd / "home").mkdir()
    # Extra ansible-playbook arguments, as AWX passes them (env/cmdline of the private data dir).
    (pdd / "env" / "cmdline").write_text("--check" + (" --limit %s" % limit if limit else ""))
    cmd = [str(BIN / "ansible-runner"), "run", str(pdd), "-p", "examples.yml", "--ident", name]
    approver = Approver(sim.cfg["exo_control_uri"], device_code_users(plays, sim))
    approver.start()
    started = time.time()
    try:
        proc = subprocess.run(cmd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              check=False, timeout=600)
    finally:
        approver.stop.set()
    status_file = pdd / "artifacts" / name / "status"
    status = status_file.read_text().strip() if status_file.exists() else "missing"
    failures = []
    for path in sorted((pdd / "artifacts" / name / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable") and not event["event_data"].get("ignore_errors"):
            data = event["event_data"]
            failures.append("%s: %s" % (data.get("task"), (data.get("res") or {}).get("msg")))
    if proc.returncode != 0 or status != "successful":
        print(proc.stdout)
        return ["%s: ansible-runner status %s" % (name, status)] + ["%s: %s" % (name, f) for f in failures]
    print("ok: %s examples ran against the simulator (check mode, %d play(s), %.0fs)" % (name, len(plays), time.time() - started))
    return []


def main():
    if len(sys.argv) < 2:
        fail("usage: run_examples.py INTEGRATION_CONFIG [WORK_DIR]")
    with open(sys.argv[1]) as f:
        cfg = yaml.safe_load(f)
    sim = Simulator(cfg)
    names = module_names()
    modules = {}
    for name in names:
        modules["%s.%s" % (NS, name)] = name
        modules[name] = name
    with open(Path(cfg["exo_simulator_state_dir"]) / "inventory.yml") as f:
        windows = yaml.safe_load(f)
    first_ws = cfg["exo_workstations"][0]["name"]
    local = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                             "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="exo-examples-"))
    work.mkdir(parents=True, exist_ok=True)
    problems = []
    try:
        for name in names:
            items = examples_of(name)
            if not items:
                problems.append("%s: no EXAMPLES" % name)
                continue
            if name == "exo_winrm_client_config":
                plays = as_plays(rewrite(items, sim, modules), "admin_workstations")
                problems += run_job(name, plays, windows, first_ws, sim, work)
            else:
                plays = as_plays(rewrite(items, sim, modules), "localhost")
                problems += run_job(name, plays, local, None, sim, work)

        # The guides' role playbooks, with the inventories they show.
        guides = ROOT / "docs" / "docsite" / "rst"
        ws_plays = yaml.safe_load(block(guides / "guide_workstations.rst", "workstations.yml"))
        problems += run_job("role_winrm_basic_auth", rewrite(ws_plays, sim, modules), windows, first_ws, sim, work)
        ti_plays = rewrite(yaml.safe_load(block(guides / "guide_trusted_ips.rst", "trusted_ips.yml")), sim, modules)
        ti_inventory = {"all": {"hosts": local["all"]["hosts"],
                                "children": yaml.safe_load(block(guides / "guide_trusted_ips.rst", "inventory.yml"))}}
        problems += run_job("role_trusted_ips", ti_plays, ti_inventory, None, sim, work)

        # Each role README's playbooks, with the inventory the README shows (if any).
        for readme in sorted((ROOT / "roles").glob("*/README.md")):
            role = readme.parent.name
            blocks = [yaml.safe_load(b) for b in markdown_yaml_blocks(readme)]
            books = [b for b in blocks if isinstance(b, list) and b and all(isinstance(p, dict) and "hosts" in p for p in b)]
            groups = next((b for b in blocks if isinstance(b, dict) and b and
                           all(isinstance(g, dict) and "hosts" in g for g in b.values())), {})
            for number, book in enumerate(books, 1):
                plays = rewrite(book, sim, modules)
                if any(p["hosts"] == "admin_workstations" for p in plays):
                    problems += run_job("readme_%s_%d" % (role, number), plays, windows, first_ws, sim, work)
                else:
                    inventory = {"all": {"hosts": local["all"]["hosts"], "children": groups}}
                    problems += run_job("readme_%s_%d" % (role, number), plays, inventory, None, sim, work)
    finally:
        if len(sys.argv) <= 2:
            shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("FAIL: %d example problem(s):" % len(problems))
        for line in problems:
            print("  %s" % line)
        sys.exit(1)
    print("ok: every module's EXAMPLES and the guides' and role READMEs' playbooks ran against the simulator")


if __name__ == "__main__":
    main()
