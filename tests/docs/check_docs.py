# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation checks of m365ops.exchange_online (offline).

1. ``antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs``: the scenario guides
   and every plugin's and role's documentation render for the Ansible docsite, with valid markup and
   valid references to this collection.
2. Every guide under docs/docsite/rst is listed in docs/docsite/extra-docs.yml.
3. Every module has complete documentation: short_description, description, author, version_added,
   attributes (check_mode, diff_mode, and action_group for the ``exo`` group), a description and a
   type for every option, EXAMPLES that parse and call the module by its FQCN, and a RETURN entry with
   description/returned/type for every key.
4. Every role has a complete meta/argument_specs.yml: a ``main`` entry point with short_description,
   description, author and options; every option has a description and a type (elements for lists),
   is prefixed with the role name and matches defaults/main.yml; every role variable the role's files
   use is documented.
5. Every error message under plugins/ is quoted in the troubleshooting guide (tests/docs/error_messages.py).

Usage: python tests/docs/check_docs.py [COLLECTION_DIR]
(COLLECTION_DIR must be .../ansible_collections/m365ops/exchange_online; defaults to a fresh copy of
the git tree.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
FQCN = "m365ops.exchange_online"
sys.path.insert(0, str(HERE))
from error_messages import messages, undocumented  # noqa: E402  (tests/docs/error_messages.py)
from collection_tree import copy_tree  # noqa: E402  (tests/docs/collection_tree.py)

PROBLEMS = []


def problem(msg):
    PROBLEMS.append(msg)
    print("FAIL: %s" % msg)


def tool_env(collection):
    env = dict(os.environ, PATH="%s%s%s" % (BIN, os.pathsep, os.environ.get("PATH", "")))
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collection.parents[2])
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def check_antsibull(collection):
    cmd = [str(BIN / "antsibull-docs"), "lint-collection-docs", "--plugin-docs", "--check-extra-docs-refs",
           "--validate-collection-refs", "self", str(collection)]
    proc = subprocess.run(cmd, cwd=collection, env=tool_env(collection), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        problem("antsibull-docs lint-collection-docs --plugin-docs failed:\n%s" % proc.stdout)
    else:
        print("ok: antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs")


def check_extra_docs(collection):
    listed = set()
    for section in yaml.safe_load((collection / "docs/docsite/extra-docs.yml").read_text())["sections"]:
        listed.update(section.get("toctree") or [])
    for rst in sorted((collection / "docs/docsite/rst").glob("*.rst")):
        if rst.stem not in listed:
            problem("docs/docsite/rst/%s is not in docs/docsite/extra-docs.yml" % rst.name)
    print("ok: extra-docs.yml lists %d guides" % len(listed))


def _option_problems(where, options, prefix=""):
    for name, spec in (options or {}).items():
        if not spec.get("description"):
            problem("%s: option %s%s has no description" % (where, prefix, name))
        if not spec.get("type"):
            problem("%s: option %s%s has no type" % (where, prefix, name))
        if spec.get("type") == "list" and not spec.get("elements"):
            problem("%s: list option %s%s has no elements" % (where, prefix, name))
        _option_problems(where, spec.get("suboptions"), "%s%s." % (prefix, name))


def _return_problems(where, returns, prefix=""):
    for name, spec in (returns or {}).items():
        for key in ("description", "type"):
            if not spec.get(key):
                problem("%s: RETURN %s%s has no %s" % (where, prefix, name, key))
        if not prefix and not spec.get("returned"):
            problem("%s: RETURN %s has no returned" % (where, name))
        if spec.get("type") == "list" and not spec.get("elements"):
            problem("%s: RETURN list %s%s has no elements" % (where, prefix, name))
        _return_problems(where, spec.get("contains"), "%s%s." % (prefix, name))


def check_modules(collection):
    runtime = yaml.safe_load((collection / "meta/runtime.yml").read_text())
    group = set((runtime.get("action_groups") or {}).get("exo") or [])
    modules = sorted(p.stem for p in (collection / "plugins/modules").glob("*.py") if p.stem != "__init__")
    if not modules:
        problem("no modules under plugins/modules")
        return
    names = ["%s.%s" % (FQCN, m) for m in modules]
    docs = {}
    for name in names:
        # One call per module, so a module whose documentation does not parse hides no other.
        proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "--json", name], env=tool_env(collection),
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            problem("ansible-doc %s failed: %s" % (name, " ".join(proc.stderr.split())))
            continue
        docs.update(json.loads(proc.stdout))
    for module, name in zip(modules, names):
        if name not in docs:
            continue
        entry = docs[name]
        doc = entry.get("doc") or {}
        where = "module %s" % module
        for key in ("short_description", "description", "author", "version_added"):
            if not doc.get(key):
                problem("%s: DOCUMENTATION has no %s" % (where, key))
        attributes = doc.get("attributes") or {}
        for key in ("check_mode", "diff_mode"):
            if key not in attributes:
                problem("%s: attributes has no %s" % (where, key))
        if module in group and "action_group" not in attributes:
            problem("%s: in the exo action group but attributes has no action_group" % where)
        _option_problems(where, doc.get("options"))
        examples = entry.get("examples") or ""
        try:
            tasks = yaml.safe_load(examples)
        except yaml.YAMLError as exc:
            problem("%s: EXAMPLES is not valid YAML: %s" % (where, exc))
            tasks = None
        if not isinstance(tasks, list) or not tasks:
            problem("%s: EXAMPLES holds no tasks" % where)
        elif not any(isinstance(t, dict) and name in t for t in tasks):
            problem("%s: no example calls %s by its FQCN" % (where, name))
        elif not all(isinstance(t, dict) and t.get("name") for t in tasks):
            problem("%s: every example task needs a name" % where)
        if not entry.get("return"):
            problem("%s: RETURN is empty" % where)
        _return_problems(where, entry.get("return"))
    print("ok: documentation of %d modules checked (%s)" % (len(modules), ", ".join(modules)))


def _defined_vars(node):
    """Names a role defines for itself: register, task/block vars, set_fact keys, loop_var."""
    names = set()
    if isinstance(node, list):
        for item in node:
            names |= _defined_vars(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "register" and isinstance(value, str):
                names.add(value)
            elif key in ("vars", "ansible.builtin.set_fact", "set_fact") and isinstance(value, dict):
                names |= set(value)
            elif key == "loop_control" and isinstance(value, dict) and value.get("loop_var"):
                names.add(value["loop_var"])
            elif isinstance(value, (list, dict)):
                names |= _defined_vars(value)
    return names


ROLE_VAR = re.compile(r"\b([a-z][a-z0-9_]*)\b")


def check_roles(collection):
    roles = sorted(p for p in (collection / "roles").glob("*") if p.is_dir()) if (collection / "roles").is_dir() else []
    for role in roles:
        where = "role %s" % role.name
        spec_file = role / "meta" / "argument_specs.yml"
        if not spec_file.is_file():
            problem("%s: meta/argument_specs.yml is missing" % where)
            continue
        try:
            specs = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs") or {}
        except yaml.YAMLError as exc:
            problem("%s: meta/argument_specs.yml is not valid YAML: %s" % (where, " ".join(str(exc).split())))
            continue
        main = specs.get("main")
        if not main:
            problem("%s: meta/argument_specs.yml has no main entry point" % where)
            continue
        for key in ("short_description", "description", "author"):
            if not main.get(key):
                problem("%s: argument_specs main has no %s" % (where, key))
        options = main.get("options") or {}
        _option_problems(where, options)
        for name in options:
            if not name.startswith(role.name + "_"):
                problem("%s: option %s is not prefixed with %s_" % (where, name, role.name))
        defaults_file = role / "defaults" / "main.yml"
        defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.is_file() else {}
        for name, value in defaults.items():
            if name not in options:
                problem("%s: defaults/main.yml sets %s, which argument_specs does not document" % (where, name))
            elif "default" in options[name] and options[name]["default"] != value:
                problem("%s: %s defaults to %r in defaults/main.yml but %r in argument_specs"
                        % (where, name, value, options[name]["default"]))
            elif "default" not in options[name] and not options[name].get("required"):
                problem("%s: argument_specs does not give the default of %s" % (where, name))
        used = set()
        for path in role.rglob("*"):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2") and "meta" not in path.parts:
                used.update(v for v in ROLE_VAR.findall(path.read_text())
                            if v.startswith(role.name + "_") and not v.startswith(role.name + "__"))
        registered = set()
        for path in role.rglob("*.yml"):
            if "meta" not in path.parts:
                try:
                    registered.update(_defined_vars(yaml.safe_load(path.read_text())))
                except yaml.YAMLError as exc:
                    problem("%s: %s is not valid YAML: %s" % (where, path.relative_to(role), " ".join(str(exc).split())))
        for name in sorted(used - set(options) - registered):
            problem("%s: uses variable %s, which argument_specs does not document" % (where, name))
    print("ok: argument specs of %d roles checked (%s)" % (len(roles), ", ".join(r.name for r in roles)))


def check_error_messages(collection):
    missing = undocumented(collection)
    for path, line, template in missing:
        problem("%s:%d: error message not quoted in guide_troubleshooting.rst: %s" % (path, line, " ".join(template.split())))
    if not missing:
        print("ok: all %d error messages under plugins/ are quoted in guide_troubleshooting.rst" % len(messages(collection)))


def main():
    with tempfile.TemporaryDirectory(prefix="exo-docs-") as tmp:
        if len(sys.argv) > 1:
            collection = Path(sys.argv[1]).resolve()
        else:
            collection = Path(tmp) / "ansible_collections" / "m365ops" / "exchange_online"
            collection.mkdir(parents=True)
            copy_tree(collection)
        if collection.parts[-3:-2] != ("ansible_collections",):
            print("FAIL: %s is not inside an ansible_collections/<namespace>/<name> tree" % collection)
            return 1
        check_antsibull(collection)
        check_extra_docs(collection)
        check_modules(collection)
        check_roles(collection)
        check_error_messages(collection)
    if PROBLEMS:
        print("%d documentation problem(s)" % len(PROBLEMS))
        return 1
    print("documentation checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
