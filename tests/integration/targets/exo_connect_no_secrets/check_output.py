# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Search a -vvv play output for every secret and token; check the prompts the user must see.

Usage: check_output.py CONFIG OUTPUT TOKEN_CACHE ISSUED_TOKENS
"""

from __future__ import annotations

import json
import re
import sys

import yaml

WRONG_VALUES = ("Wr0ng-Passw0rd-Value!", "Wrong~Secret~Value.0123456789")
MUST_APPEAR = {
    "the device code prompt": r"enter the code [A-Z0-9]{6,} to authenticate",
    "the retired-cloud warning": r"retired on 2021-10-29",
    "the wrong password message": r"the user name or password is wrong \(AADSTS50126\)",
    "the expired token message": r"access_token expired at",
}


def key_lines(path):
    """The base64 lines of the private key blocks in a PEM file (any one of them would be a leak)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    lines = []
    for block in re.findall(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(.+?)-----END", text, re.DOTALL):
        lines.extend(line.strip() for line in block.splitlines() if len(line.strip()) >= 40)
    return lines


def main(config_path, output_path, cache_path, issued_path):
    with open(config_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    secrets = {}
    for name, app in config["exo_apps"].items():
        for field in ("client_secret", "certificate_pfx_password", "certificate_encrypted_password"):
            if app.get(field):
                secrets["app %s %s" % (name, field)] = app[field]
        if app.get("certificate_path"):
            for number, line in enumerate(key_lines(app["certificate_path"])):
                secrets["app %s private key line %d" % (name, number)] = line
    for name, user in config["exo_users"].items():
        if user.get("password"):
            secrets["user %s password" % name] = user["password"]
    secrets["managed identity header"] = config["exo_managed_identity"]["header"]
    for number, value in enumerate(WRONG_VALUES):
        secrets["wrong value %d" % number] = value
    with open(issued_path, encoding="utf-8") as handle:
        for number, token in enumerate(handle.read().split()):
            secrets["issued access token %d" % number] = token
    with open(cache_path, encoding="utf-8") as handle:
        cache = json.load(handle)
    for section in ("AccessToken", "RefreshToken", "IdToken"):
        for key, entry in cache.get(section, {}).items():
            secrets["cached %s %s" % (section, key[:24])] = entry["secret"]

    with open(output_path, encoding="utf-8", errors="replace") as handle:
        output = handle.read()
    leaks = sorted(name for name, value in secrets.items() if value and value in output)
    missing = sorted(name for name, pattern in MUST_APPEAR.items() if not re.search(pattern, output))
    print("searched %d lines of -vvv output for %d secrets and tokens" % (output.count("\n"), len(secrets)))
    if leaks:
        print("LEAKED: %s" % ", ".join(leaks))
    if missing:
        print("NOT SHOWN: %s" % ", ".join(missing))
    return 1 if leaks or missing else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
