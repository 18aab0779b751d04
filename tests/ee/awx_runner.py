# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the AWX guide's job through ansible-runner, with credentials only in environment variables.

What AWX does for a job template with the guide's custom credential, reproduced here:
1. the credential type (the guide's "Input configuration" / "Injector configuration" blocks) is
   validated, and the credential's inputs are rendered into its injectors with a sandboxed Jinja
   environment: every ``file`` template becomes a private file under the job's ``env/`` directory
   whose path is ``tower.filename.<label>``, every ``env`` entry is set (empty when the field is
   blank) — see AWX ``awx/main/models/credential/__init__.py`` (``CredentialType.inject_credential``);
2. ansible-runner runs the project's playbook (the guide's ``awx_job.yml``) with those variables
   in ``env/envvars`` and an inventory whose localhost uses ``ansible_playbook_python``.

The job runs three times against the tenant simulator: with a certificate credential, a client
secret credential, and an encrypted certificate with its password and the cloud field set. Each
run must succeed, report the simulator's tenant, app and cloud, make a token request (the
simulator's counters) and keep every secret out of the job output and events. This process itself never has an EXO_* variable in its environment.

Usage: python tests/ee/awx_runner.py INTEGRATION_CONFIG [WORK_DIR]
(INTEGRATION_CONFIG: the tests/integration/integration_config.yml rendered for a running simulator.)
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUIDE = ROOT / "docs" / "docsite" / "rst" / "guide_aap.rst"
PLAYBOOK = ROOT / "tests" / "ee" / "awx_job.yml"

sys.path.insert(0, str(ROOT / "tests" / "docs"))
from rst_blocks import block  # noqa: E402  (tests/docs/rst_blocks.py)

# AWX refuses injector env vars with these names or prefixes (CredentialTypeInjectorField).
AWX_RESERVED_PREFIXES = ("ANSIBLE_",)
AWX_RESERVED_NAMES = ("PATH", "HOME", "JOB_ID", "INVENTORY_ID", "PROJECT_REVISION", "MAX_EVENT_RES", "AWX_HOST",
                      "PYTHONPATH", "VIRTUAL_ENV", "PROOT_TMP_DIR", "CALLBACK_QUEUE", "CALLBACK_CONNECTION")


def fail(msg):
    print("FAIL: %s" % msg)
    sys.exit(1)


class _AnsibleLoader(yaml.SafeLoader):
    """SafeLoader that also reads Ansible's ``!unsafe`` tag (as a plain string)."""


_AnsibleLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


class _Namespace:
    """AWX's ``tower`` template namespace (``tower.filename`` / ``tower.filename.<label>``)."""


def validate_credential_type(inputs, injectors):
    """The checks AWX makes when the credential type is saved (the ones this type can trip)."""
    fields = inputs.get("fields") or []
    ids = [f["id"] for f in fields]
    if len(ids) != len(set(ids)):
        fail("credential type: duplicate field ids %s" % ids)
    for field in fields:
        if field.get("type", "string") not in ("string", "boolean"):
            fail("credential type: field %s has type %s" % (field["id"], field.get("type")))
        if not field.get("label"):
            fail("credential type: field %s has no label" % field["id"])
    for name in inputs.get("required") or []:
        if name not in ids:
            fail("credential type: required field %s is not defined" % name)
    for name in (injectors.get("env") or {}):
        if name.startswith(AWX_RESERVED_PREFIXES) or name in AWX_RESERVED_NAMES:
            fail("credential type: AWX does not allow the injector variable %s" % name)
        if not name.startswith("EXO_") and name != "HTTPS_PROXY":
            fail("credential type: %s is not an environment variable the collection reads" % name)
    # AWX renders every template with placeholder values and StrictUndefined to reject unknown names.
    from jinja2 import StrictUndefined
    strict = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    tower = _Namespace()
    tower.filename = _Namespace()
    for label in (injectors.get("file") or {}):
        setattr(tower.filename, label.split(".", 1)[1], "/runner/env/tmpfile")
    namespace = {f["id"]: (True if f.get("type") == "boolean" else "EXAMPLE") for f in fields}
    namespace["tower"] = tower
    for template in list((injectors.get("file") or {}).values()) + list((injectors.get("env") or {}).values()):
        strict.from_string(template).render(**namespace)


def inject(inputs, injectors, credential, private_data_dir):
    """Render the injectors for one credential as AWX does; returns the job's environment additions."""
    # AWX puts only non-empty inputs in the namespace; a blank field renders as '' (jinja2 Undefined).
    given = {k: v for k, v in credential.items() if isinstance(v, bool) or len(v)}
    for field in inputs.get("fields") or []:
        if field.get("type") == "boolean" and field["id"] not in given:
            given[field["id"]] = False
    for name in inputs.get("required") or []:
        if not given.get(name):
            fail("credential: required input %s is missing" % name)
    env_dir = private_data_dir / "env"
    env_dir.mkdir(parents=True, exist_ok=True)
    sandbox = ImmutableSandboxedEnvironment()
    tower = _Namespace()
    namespace = dict(given, tower=tower)
    for label, template in (injectors.get("file") or {}).items():
        data = sandbox.from_string(template).render(**namespace)
        handle, path = tempfile.mkstemp(dir=str(env_dir))
        with os.fdopen(handle, "w") as f:
            f.write(data)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." not in label:
            tower.filename = path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = _Namespace()
            setattr(tower.filename, label.split(".", 1)[1], path)
    return {name: sandbox.from_string(template).render(**namespace)
            for name, template in (injectors.get("env") or {}).items()}


def counters(control_uri):
    with urllib.request.urlopen(control_uri.rstrip("/") + "/counters", timeout=30) as resp:
        return json.load(resp)


def grant_count(snapshot):
    return dict(snapshot.get("token_requests") or {})


def job_events(artifacts):
    events = []
    for path in sorted((artifacts / "job_events").glob("*.json")):
        with open(path) as f:
            events.append(json.load(f))
    return events


def run_job(name, credential, secrets, expected_grant, cfg, inputs, injectors, work):
    pdd = work / name
    (pdd / "project").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    shutil.copy2(PLAYBOOK, pdd / "project" / "awx_job.yml")
    # The inventory of the guide's step 6 (AWX's Demo Inventory has the same host variables).
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }}}}))
    env = inject(inputs, injectors, credential, pdd)
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(env))

    before = grant_count(counters(cfg["exo_control_uri"]))
    # This process's environment has no EXO_* variables: the job gets them only from env/envvars.
    proc_env = {k: v for k, v in os.environ.items() if not k.startswith("EXO_")}
    proc_env["PATH"] = "%s%s%s" % (BIN, os.pathsep, proc_env.get("PATH", ""))
    proc_env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(ROOT.parents[2]))
    proc_env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    # Each AWX job starts a fresh EE container: no token cache from an earlier job in its HOME.
    proc_env["HOME"] = str(pdd / "home")
    (pdd / "home").mkdir()
    cmd = [str(BIN / "ansible-runner"), "run", str(pdd), "-p", "awx_job.yml", "--ident", name]
    proc = subprocess.run(cmd, env=proc_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    artifacts = pdd / "artifacts" / name
    status = (artifacts / "status").read_text().strip() if (artifacts / "status").exists() else "missing"
    print(proc.stdout)
    if proc.returncode != 0 or status != "successful":
        fail("%s: ansible-runner exited %d, job status %s" % (name, proc.returncode, status))

    events = job_events(artifacts)
    results = {e["event_data"].get("task"): e["event_data"].get("res", {})
               for e in events if e.get("event") == "runner_on_ok"}
    connection = results.get("Sign in and verify the connection (Get-OrganizationConfig)", {}).get("connection") or {}
    app_id = credential["app_id"]
    if connection.get("organization") != cfg["exo_organization"] or connection.get("app_id") != app_id:
        fail("%s: exo_connect returned %r, expected organization %s and app %s"
             % (name, connection, cfg["exo_organization"], app_id))
    if bool(connection.get("certificate_authentication")) != (expected_grant == "certificate"):
        fail("%s: connection.certificate_authentication is %r" % (name, connection.get("certificate_authentication")))
    # EXO_ENVIRONMENT reached the module (blank field -> the injector's O365Default).
    environment = credential.get("exchange_environment_name") or "O365Default"
    if connection.get("exchange_environment_name") != environment:
        fail("%s: connection.exchange_environment_name is %r, expected %s"
             % (name, connection.get("exchange_environment_name"), environment))
    facts = results.get("Read up to 100 mailboxes", {})
    if not facts.get("mailbox_count"):
        fail("%s: exo_mailbox_facts read no mailboxes: %r" % (name, facts))
    report = results.get("Report what the job saw", {}).get("msg", "")
    if cfg["exo_organization"] not in report:
        fail("%s: the report task printed %r" % (name, report))

    after = grant_count(counters(cfg["exo_control_uri"]))
    if sum(after.values()) <= sum(before.values()):
        fail("%s: the simulator saw no token request (before %r, after %r)" % (name, before, after))

    # What AWX shows and stores: the job's stdout and events. No secret may appear there.
    shown = (artifacts / "stdout").read_text() + json.dumps(events)
    for label, secret in secrets.items():
        if secret and secret in shown:
            fail("%s: the %s appears in the job output or events" % (name, label))
    print("ok: %s job succeeded through ansible-runner (%s); token requests %r -> %r" % (name, report, before, after))


def pem_secret_line(pem):
    """One base64 line from inside the private key block, to search the output for."""
    lines = pem.splitlines()
    start = next(i for i, line in enumerate(lines) if "PRIVATE KEY-----" in line and "BEGIN" in line)
    return lines[start + 2]


def main():
    if len(sys.argv) < 2:
        fail("usage: awx_runner.py INTEGRATION_CONFIG [WORK_DIR]")
    for name in [k for k in os.environ if k.startswith("EXO_")]:
        del os.environ[name]
    with open(sys.argv[1]) as f:
        cfg = yaml.safe_load(f)

    inputs = yaml.safe_load(block(GUIDE, "Input configuration"))
    injectors = yaml.safe_load(block(GUIDE, "Injector configuration"))
    if block(GUIDE, "awx_job.yml").strip() != PLAYBOOK.read_text().strip():
        fail("%s: the awx_job.yml block differs from tests/ee/awx_job.yml" % GUIDE.name)
    validate_credential_type(inputs, injectors)
    print("ok: the guide's credential type passes AWX's checks")
    # The awx.awx playbook cannot run here (no AWX); check it parses and names real awx.awx modules and options.
    setup = yaml.load(block(GUIDE, "awx_setup.yml"), Loader=_AnsibleLoader)
    tasks = {next(k for k in t if "." in k): t for t in setup[0]["tasks"]}
    expected = {"awx.awx.credential_type": {"name", "kind", "inputs", "injectors"},
                "awx.awx.credential": {"name", "credential_type", "inputs"},
                "awx.awx.execution_environment": {"name", "image"},
                "awx.awx.project": {"name", "scm_type", "scm_url"},
                "awx.awx.inventory": {"name"}, "awx.awx.host": {"name", "inventory", "variables"},
                "awx.awx.job_template": {"name", "project", "playbook", "inventory", "execution_environment", "credentials"},
                "awx.awx.job_launch": {"job_template"}}
    for module, options in expected.items():
        if module not in tasks or not options <= set(tasks[module][module]):
            fail("%s: awx_setup.yml has no %s task with %s" % (GUIDE.name, module, ", ".join(sorted(options))))
    creds = tasks["awx.awx.job_template"]["awx.awx.job_template"]["credentials"]
    if tasks["awx.awx.credential"]["awx.awx.credential"]["name"] not in creds:
        fail("%s: the job template in awx_setup.yml does not use the credential it creates" % GUIDE.name)
    print("ok: the guide's awx.awx playbook creates the credential type, credential, EE, project, inventory and job template")

    app = cfg["exo_apps"]["full"]
    with open(app["certificate_path"]) as f:
        pem = f.read()
    with open(cfg["exo_ca_path"]) as f:
        ca_bundle = f.read()
    # The simulator is a private cloud for the collection: the guide's override fields point at it.
    common = {
        "organization": cfg["exo_organization"],
        "app_id": app["app_id"],
        "connection_uri": cfg["exo_connection_uri"],
        "azure_ad_authorization_endpoint_uri": cfg["exo_authority"],
        "graph_uri": cfg["exo_graph_uri"],
        "ca_bundle": ca_bundle,
    }
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="exo-awx-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_job("certificate", dict(common, certificate=pem), {"private key": pem_secret_line(pem)},
                "certificate", cfg, inputs, injectors, work)
        run_job("client_secret", dict(common, client_secret=app["client_secret"]),
                {"client secret": app["client_secret"]}, "client_secret", cfg, inputs, injectors, work)
        # An encrypted key with its password, and the cloud field filled in (the overrides still win).
        with open(app["certificate_encrypted_path"]) as f:
            encrypted = f.read()
        run_job("encrypted_certificate", dict(common, certificate=encrypted,
                                              certificate_password=app["certificate_encrypted_password"],
                                              exchange_environment_name="O365USGovGCCHigh"),
                {"private key": pem_secret_line(encrypted), "certificate password": app["certificate_encrypted_password"]},
                "certificate", cfg, inputs, injectors, work)
    finally:
        if len(sys.argv) <= 2:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
