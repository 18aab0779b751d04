# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the documented execution environment definition, offline.

1. The definition and requirements.yml shown in docs/docsite/rst/guide_execution_environment.rst
   are exactly tests/ee/execution-environment.yml and tests/ee/requirements.yml.
2. Follow the guide: build the collection tarball, take requirements.txt and bindep.txt out of
   it, run ``ansible-builder create``. ``create`` only writes the build context (no network), so
   this runs offline. The context must hold the tarball and a requirements.txt that lists msal,
   pywinrm and jmespath.
3. Install the tarball offline and run ``ansible-builder introspect`` on it: that is what the
   image build runs, so the collection itself must declare the same packages.

Usage: python tests/ee/check_execution_environment.py [COLLECTION_DIR]
(COLLECTION_DIR defaults to a fresh copy of the git tree.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUIDE = ROOT / "docs" / "docsite" / "rst" / "guide_execution_environment.rst"
REQUIRED = ("msal", "pywinrm", "jmespath")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))
from rst_blocks import code_blocks  # noqa: E402  (tests/docs/rst_blocks.py)
from collection_tree import copy_tree  # noqa: E402  (tests/docs/collection_tree.py)


def fail(msg):
    print("FAIL: %s" % msg)
    sys.exit(1)


def run(cmd, cwd=None):
    env = dict(os.environ, PATH="%s%s%s" % (BIN, os.pathsep, os.environ.get("PATH", "")))
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        fail("%s exited %d:\n%s" % (" ".join(str(c) for c in cmd), proc.returncode, proc.stdout))
    return proc.stdout


def package_names(text):
    """Package names of a pip requirements text (comments and markers ignored), lower case."""
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0].lower())
    return names


def main():
    with tempfile.TemporaryDirectory(prefix="exo-ee-") as tmp:
        tmp = Path(tmp)
        if len(sys.argv) > 1:
            collection = Path(sys.argv[1]).resolve()
        else:
            collection = tmp / "src" / "ansible_collections" / "m365ops" / "exchange_online"
            collection.mkdir(parents=True)
            copy_tree(collection)

        # 1. The guide shows the files this check uses.
        blocks = {b.caption: b.text for b in code_blocks(GUIDE) if b.caption}
        for name in ("execution-environment.yml", "requirements.yml"):
            shipped = (ROOT / "tests" / "ee" / name).read_text().strip()
            if blocks.get(name, "").strip() != shipped:
                fail("%s: the code block captioned %r differs from tests/ee/%s" % (GUIDE.name, name, name))
        print("ok: guide shows tests/ee/execution-environment.yml and tests/ee/requirements.yml verbatim")

        # 2. The guide's steps: build the tarball, copy the collection's dependency files, create.
        ee = tmp / "ee"
        ee.mkdir()
        run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp, collection])
        tarball = next(tmp.glob("m365ops-exchange_online-*.tar.gz"))
        shutil.copy2(tarball, ee / "m365ops-exchange_online.tar.gz")
        with tarfile.open(tarball) as tar:
            members = set(tar.getnames())
            for name in ("requirements.txt", "bindep.txt", "meta/execution-environment.yml"):
                if name not in members:
                    fail("the collection tarball does not contain %s (check build_ignore in galaxy.yml)" % name)
            for name in ("requirements.txt", "bindep.txt"):
                (ee / name).write_bytes(tar.extractfile(name).read())
        for name in ("execution-environment.yml", "requirements.yml"):
            shutil.copy2(ROOT / "tests" / "ee" / name, ee / name)
        run([BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context",
             "--output-filename", "Containerfile"], cwd=ee)
        build = ee / "context" / "_build"
        for path in (ee / "context" / "Containerfile", build / "requirements.yml", build / "bindep.txt",
                     build / "collections" / "m365ops-exchange_online.tar.gz"):
            if not path.is_file():
                fail("ansible-builder create did not write %s" % path.relative_to(ee))
        listed = package_names((build / "requirements.txt").read_text())
        missing = [p for p in REQUIRED if p not in listed]
        if missing:
            fail("context/_build/requirements.txt does not list %s (it lists %s)" % (", ".join(missing), ", ".join(sorted(listed))))
        print("ok: ansible-builder create wrote the context; _build/requirements.txt lists %s" % ", ".join(REQUIRED))

        # 3. What the image build runs: introspection of the installed collection.
        cols = tmp / "installed"
        run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", cols, tarball])
        out = run([BIN / "ansible-builder", "introspect", cols, "--write-pip", tmp / "introspected.txt"])
        introspected = package_names((tmp / "introspected.txt").read_text())
        missing = [p for p in REQUIRED if p not in introspected]
        if missing:
            fail("ansible-builder introspect found no %s in the installed collection:\n%s" % (", ".join(missing), out))
        print("ok: ansible-builder introspect of the installed collection lists %s" % ", ".join(REQUIRED))


if __name__ == "__main__":
    main()
