# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin in front of exo_connect: runs a device code sign-in on the controller, where the person
running the play (terminal or AWX job output) can see the URL and the code, then runs the module, which
finds the cached sign-in."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoError
from ansible_collections.m365ops.exchange_online.plugins.module_utils._http import HAS_REQUESTS, HttpClient, redact
from ansible_collections.m365ops.exchange_online.plugins.module_utils._environments import resolve_endpoints
from ansible_collections.m365ops.exchange_online.plugins.module_utils._auth import (
    HAS_MSAL,
    TokenProvider,
    resolve_token_cache_path,
    select_auth_method,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import AUTH_ARGUMENT_SPEC, SECRET_OPTIONS

display = Display()

MODULE = "m365ops.exchange_online.exo_connect"
SERVICE_SPEC = dict(service=dict(type="str", default="exchange", choices=["exchange", "security_compliance"]))


class ActionModule(ActionBase):

    def _runs_on_controller(self):
        return getattr(self._connection, "transport", None) == "local" or \
            getattr(self._play_context, "connection", None) == "local"

    def _params(self):
        """The module's parameters with defaults and EXO_* fallbacks, as the module will see them on this host."""
        spec = dict(AUTH_ARGUMENT_SPEC)
        spec.update(SERVICE_SPEC)
        result = ArgumentSpecValidator(spec).validate(dict(self._task.args))
        if result.error_messages:
            return None  # the module reports bad options itself
        return result.validated_parameters

    def _device_code_sign_in(self, params):
        secrets = [params.get(o) for o in SECRET_OPTIONS if params.get(o)]
        if resolve_token_cache_path(params) is None:
            raise ExoError("auth_method=device_code needs the token cache: the module signs in from the sign-in this task "
                           "makes on the controller. Remove token_cache_path='' or give a file path.",
                           details={"option": "token_cache_path"})
        endpoints = resolve_endpoints(params, warn=None)
        http = HttpClient(validate_certs=params.get("validate_certs", True), ca_path=params.get("ca_path"),
                          proxy=params.get("proxy"), timeout=params.get("timeout") or 300, secrets=secrets)
        provider = TokenProvider(params, endpoints, http, warn=display.warning, display=display)
        resource = endpoints.scc_resource if params.get("service") == "security_compliance" else endpoints.exchange_resource

        def show(message):
            # display() reaches the terminal and AWX job output (workers hand it to the main process).
            display.display("[%s] %s" % (self._task.get_name() or "exo_connect", message), color="bright yellow")
            display.display("[%s] Waiting for the sign-in to complete..." % (self._task.get_name() or "exo_connect"))

        try:
            provider.device_code_sign_in(resource, show)
        finally:
            http.session.close()

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        params = self._params()
        method = None
        if params is not None:
            try:
                method = select_auth_method(params)
            except ExoError:
                method = None  # the module explains the ambiguity
        if method == "device_code" and HAS_MSAL and HAS_REQUESTS:
            if self._runs_on_controller():
                try:
                    self._device_code_sign_in(params)
                except ExoError as exc:
                    result.update(failed=True, changed=False, msg=exc.message, **exc.to_result())
                    return result
                except Exception as exc:  # pylint: disable=broad-except
                    secrets = [params.get(o) for o in SECRET_OPTIONS if params.get(o)]
                    result.update(failed=True, changed=False,
                                  msg=redact("Device code sign-in failed: %s: %s" % (type(exc).__name__, exc), secrets))
                    return result
            else:
                display.vvv("exo_connect: device code sign-in is shown only when the task runs on the controller; "
                            "the module on %s uses a sign-in cached there." % task_vars.get("inventory_hostname"))

        result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
        return result
