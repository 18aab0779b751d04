# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the benchmarks/bench_*.py scripts (not a benchmark itself: the runner globs bench_*.py).

The scripts import it as ``_common``: Python puts the script's own directory (benchmarks/) first on sys.path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

# The anchor mailbox the Exchange Online REST clients send for tenant-wide cmdlets, and the Get-Mailbox
# Minimum property set (the module's default $select).
SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"
MINIMUM = ("Alias,DisplayName,DistinguishedName,EmailAddresses,ExchangeVersion,ExternalDirectoryObjectId,Guid,Id,Name,"
           "OrganizationId,PrimarySmtpAddress,RecipientType,RecipientTypeDetails,UserPrincipalName")


def start_simulator(state_dir, mailboxes, workstations=0, timeout=120, extra_args=()):
    """Start ``python -m tests.simulator`` in state_dir (created if missing); returns (process, endpoints.json contents).

    The simulator's output goes to state_dir/simulator.log. Exits the benchmark with a message naming that
    log when the simulator stops early, and stops it when endpoints.json has not appeared after timeout s.
    """
    os.makedirs(state_dir, exist_ok=True)
    log_path = os.path.join(state_dir, "simulator.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.simulator", "--state-dir", state_dir,
                                 "--mailboxes", str(mailboxes), "--workstations", str(workstations)] + list(extra_args),
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    endpoints = os.path.join(state_dir, "endpoints.json")
    deadline = time.time() + timeout
    while not (os.path.exists(endpoints) and os.path.getsize(endpoints)):
        if proc.poll() is not None:
            raise SystemExit("the simulator exited early (exit %d); see %s" % (proc.returncode, log_path))
        if time.time() > deadline:
            stop(proc)
            raise SystemExit("the simulator did not start within %d s; see %s" % (timeout, log_path))
        time.sleep(0.2)
    with open(endpoints, encoding="utf-8") as handle:
        return proc, json.load(handle)


def stop(proc, timeout=30):
    """SIGTERM, then SIGKILL when the process has not ended after timeout seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def link_collection(base):
    """Make base/ansible_collections/m365ops/exchange_online point at this checkout; returns base.

    base is what ANSIBLE_COLLECTIONS_PATH (or sys.path, to import the collection's Python) needs.
    """
    namespace = os.path.join(base, "ansible_collections", "m365ops")
    os.makedirs(namespace)
    os.symlink(ROOT, os.path.join(namespace, "exchange_online"))
    return base


def ansible_env(collections_path, **settings):
    """The environment for ansible-playbook: this collection on ANSIBLE_COLLECTIONS_PATH, the venv's bin
    first on PATH, plus ``settings`` (e.g. ANSIBLE_HOST_KEY_CHECKING="false")."""
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path,
                PATH=BIN + os.pathsep + os.environ.get("PATH", ""), **settings)


def run_playbook(args, env, what="the playbook", cwd=None, tail=6000):
    """Run ansible-playbook with args; returns its wall time in seconds.

    On failure prints the last ``tail`` characters of its output and exits with "<what> failed (exit N)".
    """
    start = time.perf_counter()
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook")] + list(args), env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout.decode("utf-8", "replace")[-tail:])
        raise SystemExit("%s failed (exit %d)" % (what, proc.returncode))
    return elapsed


def counters(endpoints):
    """The simulator's control API counters (GET <control_uri>/counters)."""
    with urllib.request.urlopen(endpoints["control_uri"] + "/counters", timeout=30) as resp:
        return json.load(resp)


def client_credentials_token(session, endpoints, resource):
    """An app-only token for resource from the simulated Entra ID, with a plain requests session."""
    app = endpoints["apps"]["full"]
    resp = session.post(endpoints["authority"] + "/oauth2/v2.0/token", verify=endpoints["ca_path"], timeout=30, data={
        "grant_type": "client_credentials", "client_id": app["app_id"], "client_secret": app["client_secret"],
        "scope": resource + "/.default"})
    resp.raise_for_status()
    return resp.json()["access_token"]


def read_mailboxes(session, endpoints, access_token, parameters, select=MINIMUM):
    """Every page of Get-Mailbox through InvokeCommand (pages of 1000), parsed and dropped; returns (pages, mailboxes)."""
    url = "%s/adminapi/beta/%s/InvokeCommand" % (endpoints["connection_uri"], endpoints["organization"])
    headers = {"Authorization": "Bearer " + access_token, "Content-Type": "application/json",
               "X-AnchorMailbox": "UPN:%s@%s" % (SYSTEM_MAILBOX, endpoints["organization"]),
               "X-ResponseFormat": "json", "Prefer": "odata.maxpagesize=1000"}
    body = json.dumps({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": parameters}})
    params = {"$select": select}
    pages = count = 0
    while url:
        resp = session.post(url, params=params, data=body, headers=headers, verify=endpoints["ca_path"], timeout=120)
        resp.raise_for_status()
        doc = resp.json()
        pages += 1
        count += len(doc["value"])
        url = doc.get("@odata.nextLink")
        params = None
    return pages, count
