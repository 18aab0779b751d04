# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error messages the collection can produce, read from its source, and their troubleshooting entries.

A message is the text given to an exception class (``...Error(...)``, ``AnsibleActionFail(...)``), to
``fail_json(msg=...)`` / ``fail(...)``, or set with ``failed=True, msg=...`` in an action plugin's result,
in plugins/; and the ``fail_msg`` / ``msg`` of assert and fail tasks in roles/. Formatted messages (``"... %s ..." % x``,
``"...{x}...".format()``) are reduced to their literal pieces. The troubleshooting guide documents a
message when it quotes the message's longest literal piece verbatim (whitespace normalised).

Usage: python tests/docs/error_messages.py [--list | --check] [COLLECTION_DIR]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GUIDE = Path("docs") / "docsite" / "rst" / "guide_troubleshooting.rst"
CALLS = re.compile(r"(Error|Exception|Fail|fail_json|^fail)$")
PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|%(\([^)]*\))?[-#0 +]*\d*(\.\d+)?[sdrifxg%]|\{[^{}]*\}", re.S)
MIN_PIECE = 12


def _text(node, names):
    """The literal template of a message expression, or None when it is not built from literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _text(node.left, names)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, names), _text(node.right, names)
        if left is None and right is None:
            return None
        return (left or "{}") + (right or "{}")
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _text(node.func.value, names)
    if isinstance(node, ast.Call) and _call_name(node.func) in ("redact", "to_native", "to_text", "str") and node.args:
        return _text(node.args[0], names)
    return None


def _call_name(func):
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def pieces(template):
    """Literal pieces of a message template, longest first, whitespace normalised."""
    found = [" ".join(p.split()) for p in PLACEHOLDER.sub("\0", template).split("\0") if p]
    return sorted((p for p in found if len(p.strip(" .:,;'\"()")) >= MIN_PIECE), key=len, reverse=True)


def messages(collection):
    """[(file, line, template)] for every literal error message under plugins/."""
    found = []
    for path in sorted((collection / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Module-level string constants (message templates kept in a name, e.g. SIGN_IN_FIRST).
        names = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = _text(node.value, {})
                if value is not None:
                    names[node.targets[0].id] = value
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg for k in node.keywords}
            # Action plugins fail through their result: result.update(failed=True, msg=...).
            if not CALLS.search(_call_name(node.func)) and not {"failed", "msg"} <= keywords:
                continue
            candidates = [k.value for k in node.keywords if k.arg in ("msg", "message")]
            if CALLS.search(_call_name(node.func)):
                candidates = list(node.args[:1]) + candidates
            for arg in candidates:
                template = _text(arg, names)
                if template and pieces(template):
                    found.append((path.relative_to(collection), node.lineno, template))
    for path in sorted((collection / "roles").glob("*/tasks/*.yml")):
        for template in _role_messages(yaml.safe_load(path.read_text(encoding="utf-8"))):
            found.append((path.relative_to(collection), 0, template))
    return found


def _role_messages(node):
    """fail_msg of assert tasks and msg of fail tasks in a role's task file."""
    if isinstance(node, list):
        for item in node:
            yield from _role_messages(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("ansible.builtin.assert", "assert") and isinstance(value, dict) and value.get("fail_msg"):
                yield str(value["fail_msg"])
            elif key in ("ansible.builtin.fail", "fail") and isinstance(value, dict) and value.get("msg"):
                yield str(value["msg"])
            elif key in ("block", "rescue", "always"):
                yield from _role_messages(value)


def undocumented(collection):
    guide = " ".join((collection / GUIDE).read_text(encoding="utf-8").split())
    # RST escapes (``\*``) and literal markup must not hide a quoted message.
    guide = guide.replace("\\", "")
    missing = []
    for path, line, template in messages(collection):
        if pieces(template)[0] not in guide:
            missing.append((path, line, template))
    return missing


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    collection = Path(args[0]).resolve() if args else ROOT
    if "--list" in sys.argv:
        for path, line, template in messages(collection):
            print("%s:%d: %s" % (path, line, " ".join(template.split())))
        return 0
    missing = undocumented(collection)
    total = len(messages(collection))
    if missing:
        print("FAIL: %d of %d error messages are not quoted in %s:" % (len(missing), total, GUIDE))
        for path, line, template in missing:
            print("  %s:%d: %s" % (path, line, " ".join(template.split())))
        return 1
    print("ok: all %d error messages under plugins/ are quoted in %s" % (total, GUIDE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
