# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin behind m365ops.exchange_online.exo_winrm_client_config (documentation: plugins/modules/).

Windows hosts run no Python, so this runs on the controller and speaks WS-Management to the host through
the host's own ``winrm`` connection: ``self._connection.protocol`` is the pywinrm Protocol Ansible already
authenticated with the inventory's transport, credentials and message encryption (reference
winrm-wsman-config.md §12). One Get of ``.../config/client`` reads every setting; only what differs is Put.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.m365ops.exchange_online.plugins.plugin_utils._wsman import (
    BY_OPTION,
    SETTINGS,
    PolicyControlledError,
    WsmanConfigClient,
    WsmanError,
    merge_trusted_hosts,
    same_hosts,
    split_hosts,
)

BOOL_OPTIONS = ("basic", "digest", "kerberos", "negotiate", "certificate", "credssp", "allow_unencrypted")

ARGUMENT_SPEC = dict(
    basic=dict(type="bool"),
    digest=dict(type="bool"),
    kerberos=dict(type="bool"),
    negotiate=dict(type="bool"),
    certificate=dict(type="bool"),
    credssp=dict(type="bool"),
    allow_unencrypted=dict(type="bool"),
    trusted_hosts=dict(type="list", elements="str"),
    trusted_hosts_mode=dict(type="str", default="add", choices=["add", "remove", "set"]),
    policy_controlled=dict(type="str", default="fail", choices=["fail", "warn"]),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        host = task_vars.get("inventory_hostname") or self._connection.get_option("remote_addr")

        _dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        # Only the winrm connection has a pywinrm Protocol to reuse (psrp, ssh and local do not).
        transport = getattr(self._connection, "transport", None)
        if transport != "winrm":
            raise AnsibleActionFail(
                "exo_winrm_client_config talks WS-Management through the host's winrm connection, but %s uses "
                "ansible_connection=%s. Set ansible_connection=winrm for this host (with ansible_winrm_transport, "
                "ansible_user and ansible_password as for any Windows host reached over WinRM)." % (host, transport))

        wanted = dict((option, args[option]) for option in BOOL_OPTIONS if args[option] is not None)
        if args["trusted_hosts"] is not None:
            wanted["trusted_hosts"] = args["trusted_hosts"]
            bad = [h for h in split_hosts(args["trusted_hosts"]) if " " in h]
            if bad:
                raise AnsibleActionFail("trusted_hosts entries cannot contain spaces: %s. Give host names, IP "
                                        "addresses or patterns such as *.corp.example, one per list item." % ", ".join(bad))

        # Connecting opens the connection's own cmd shell (what the winrm plugin does); the Get/Put below go
        # through the same Protocol and so the same session and encryption context (reference §10).
        self._connection._connect()
        client = WsmanConfigClient(self._connection.protocol, host)
        try:
            current = client.get_client()
        except WsmanError as exc:
            return self._fail(result, exc)

        before = current.as_result()
        target = {}
        for option, value in wanted.items():
            if option == "trusted_hosts":
                new = merge_trusted_hosts(current.values.get(option, ""), value, args["trusted_hosts_mode"])
                if not same_hosts(new, current.values.get(option, "")):
                    target[option] = new
            elif current.values.get(option) != value:
                target[option] = value

        # Group Policy: report every held setting; one the task wants to change fails (or warns and is skipped).
        policy_controlled = []
        blocked = []
        for setting in SETTINGS:
            if not current.held(setting.option):
                continue
            conflict = setting.option in target
            policy_controlled.append(dict(
                option=setting.option, element=setting.path, value=before.get(setting.option),
                policy=setting.policy_value, requested=target.get(setting.option, wanted.get(setting.option)),
                conflict=conflict))
            if conflict:
                blocked.append(setting)
        result.update(policy_controlled=policy_controlled, written=False)
        if blocked:
            msg = self._policy_message(host, blocked, before, target)
            if args["policy_controlled"] == "fail":
                result.update(failed=True, msg=msg + " Set the policy to \"Not Configured\" (or change the GPO that "
                              "sets it), or use policy_controlled=warn to report it and go on.",
                              changed=False, before=before, after=before)
                return result
            result.setdefault("warnings", []).append(msg + " Left unchanged (policy_controlled=warn).")
            for setting in blocked:
                del target[setting.option]

        after_values = dict(current.values)
        after_values.update((k, ",".join(v) if isinstance(v, list) else v) for k, v in target.items())
        if target and not self._task.check_mode:
            try:
                reported = client.put(target)
            except PolicyControlledError as exc:
                # The Get showed no Source="GPO" marker but the host refused anyway (a policy applied since).
                return self._fail(result, exc, before=before)
            except WsmanError as exc:
                return self._fail(result, exc, before=before)
            after_values.update(reported.values)
            mismatched = [o for o in target if not self._equal(o, after_values.get(o), target[o])]
            if mismatched:
                result.update(failed=True, changed=True, before=before,
                              msg="%s accepted the change of %s but reports different values afterwards; check the "
                                  "host's WinRM configuration." % (host, ", ".join(mismatched)))
                return result

        after = dict(before)
        for option, value in after_values.items():
            if option in before or option in target:
                after[option] = split_hosts(value) if BY_OPTION[option].kind == "hosts" else value

        if after.get("basic") and after.get("allow_unencrypted"):
            result.setdefault("warnings", []).append(
                "%s allows WinRM client Basic authentication over unencrypted HTTP: credentials would cross the "
                "network in the clear. Keep allow_unencrypted false and use HTTPS for Basic." % host)

        result.update(changed=bool(target), before=before, after=after, written=bool(target) and not self._task.check_mode)
        if self._task.diff:
            in_play = [o for o in (list(BOOL_OPTIONS) + ["trusted_hosts"]) if o in wanted]
            result["diff"] = dict(before=dict((o, before.get(o)) for o in in_play),
                                  after=dict((o, after.get(o)) for o in in_play))
        return result

    @staticmethod
    def _equal(option, reported, wanted):
        if BY_OPTION[option].kind == "hosts":
            return same_hosts(reported, wanted)
        return reported == wanted

    @staticmethod
    def _policy_message(host, blocked, before, target):
        parts = []
        for setting in blocked:
            parts.append("%s (%s) is held by Group Policy at %s, the task wants %s; policy registry value %s"
                         % (setting.option, setting.path, _show(before.get(setting.option)),
                            _show(target[setting.option]), setting.policy_value or "(none known)"))
        return "On %s: %s." % (host, "; ".join(parts))

    @staticmethod
    def _fail(result, exc, before=None):
        result.update(failed=True, changed=False, msg=exc.message)
        if exc.wsman_code is not None:
            result["wsman_fault_code"] = exc.wsman_code
        if before is not None:
            result["before"] = before
        return result


def _show(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value) or "(empty)"
    return str(value)
