# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the module unit tests: a fake HTTP response, and running a module's main() in-process.

Import as ``ansible_collections.m365ops.exchange_online.tests.unit.plugins.modules._helpers`` (works under
``ansible-test units`` and under plain pytest with the collection tree on sys.path).
"""

from __future__ import annotations

import contextlib
import json

from ansible.module_utils import basic
from ansible.module_utils.common.warnings import get_warning_messages
from ansible_collections.m365ops.exchange_online.plugins.module_utils import _exo
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import ExoModule


class FakeHttp:
    """Base of the fake HTTP layers: what the clients read from the collection's session besides request()."""

    max_retries = 5

    @staticmethod
    def redact(text):
        return text


class FakeResponse:
    """What the collection's HTTP clients read from a requests response. ``body=None``: no body (e.g. 204)."""

    def __init__(self, status, body=None):
        self.status_code = status
        self._body = body
        self.text = "" if body is None else json.dumps(body)
        self.content = self.text.encode()
        self.headers = {}
        self.reason = "reason"

    def json(self):
        if self._body is None:
            raise ValueError("no body")
        return json.loads(self.text)

    def close(self):
        pass


class Exit(Exception):
    """Raised by the patched exit_json; ``result`` holds its keyword arguments."""

    def __init__(self, kwargs):
        super().__init__(kwargs)
        self.result = kwargs


class Fail(Exception):
    """Raised by the patched fail_json; ``result`` holds its keyword arguments."""

    def __init__(self, kwargs):
        super().__init__(kwargs)
        self.result = kwargs


def patch_exit(monkeypatch, warnings=None):
    """Make ExoModule.exit_json/fail_json raise Exit/Fail instead of printing and exiting.

    ``warnings``: a callable returning the warnings that exit_json puts in the result unless it is given
    some (the real exit_json adds the module's warnings the same way); None leaves the result as it is.
    """
    def exit_json(self, **kwargs):
        if warnings is not None:
            kwargs.setdefault("warnings", list(warnings()))
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(ExoModule, "exit_json", exit_json)
    monkeypatch.setattr(ExoModule, "fail_json", fail_json)


@contextlib.contextmanager
def module_args(monkeypatch, args):
    """The module arguments AnsibleModule reads, for the ansible-core in use."""
    try:
        from ansible.module_utils.testing import patch_module_args  # pylint: disable=import-outside-toplevel
    except ImportError:  # ansible-core < 2.19
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
        yield
    else:
        with patch_module_args(args):
            yield


def run_module(monkeypatch, main, args):
    """Run a module's main() with ``args`` (exit/fail patched with patch_exit first).

    Returns the result dict with ``_failed`` added: False after exit_json, True after fail_json.
    """
    with module_args(monkeypatch, args):
        try:
            main()
        except (Exit, Fail) as outcome:
            return dict(outcome.result, _failed=isinstance(outcome, Fail))
    raise AssertionError("the module neither exited nor failed")


def exo_runner(monkeypatch, main, base_uri):
    """A runner for a module on the Exchange Online REST client: ``run(fake, check_mode=False, **args)``.

    ExoModule.exo_client builds a real ExoClient at base_uri over ``fake`` (the HTTP layer), for the tenant
    contoso.onmicrosoft.com with an access token. The result carries ``_services``: the services the module
    asked a client for, in order. Warnings come from ansible's own warning list, as in a real module run.
    """
    state = {}

    def exo_client(self, service="exchange"):
        state["services"].append(service)
        return _exo.ExoClient(state["http"], None, base_uri, "contoso.onmicrosoft.com", "UPN:admin@contoso.com",
                              warn=self.warn)

    patch_exit(monkeypatch, warnings=get_warning_messages)
    monkeypatch.setattr(ExoModule, "exo_client", exo_client)

    def run(fake, check_mode=False, **args):
        state["http"] = fake
        state["services"] = []
        args = dict(args, _ansible_check_mode=check_mode, organization="contoso.onmicrosoft.com",
                    auth_method="access_token", access_token="token")
        return dict(run_module(monkeypatch, main, args), _services=list(state["services"]))

    return run
