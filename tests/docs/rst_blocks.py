# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the ``.. code-block::`` directives of an RST guide, so tests can run what the docs show.

A block is found by its ``:caption:`` option, the same title readers see above it.
"""

from __future__ import annotations

import re
from collections import namedtuple
from pathlib import Path

Block = namedtuple("Block", "language caption text line")

_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. code-block::\s*(?P<lang>\S*)\s*$")
_OPTION = re.compile(r"^\s*:(?P<name>[\w-]+):\s*(?P<value>.*)$")


def code_blocks(path):
    """Every code block of the file at ``path`` as Block(language, caption, text, line)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i + 1
        indent = len(match.group("indent"))
        options = {}
        i += 1
        while i < len(lines) and _OPTION.match(lines[i]):
            opt = _OPTION.match(lines[i])
            options[opt.group("name")] = opt.group("value").strip()
            i += 1
        body = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        text = "\n".join(b[width:] for b in body) + "\n"
        blocks.append(Block(match.group("lang"), options.get("caption"), text, start))
    return blocks


def block(path, caption):
    """The text of the block captioned ``caption``; KeyError naming the guide when absent."""
    for found in code_blocks(path):
        if found.caption == caption:
            return found.text
    raise KeyError("%s has no code block captioned %r" % (Path(path).name, caption))
