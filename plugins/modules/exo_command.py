#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exo_command
short_description: Run an Exchange Online or Security & Compliance cmdlet
version_added: 0.1.0
description:
  - Runs any cmdlet the signed-in identity may run, through the Exchange Online REST endpoint (the surface the
    ExchangeOnlineManagement module uses), and returns its output objects.
  - O(parameters) travel to the service as JSON, never as PowerShell text, so no value can inject script. Switches
    are V(true); arrays are lists; multi-valued add/remove edits are dictionaries with the keys C(add) and
    C(remove), each a list.
  - C(Get-*) and C(Test-*) cmdlets never report a change. Every other cmdlet reports a change unless the service says
    that nothing was modified (C(The command completed successfully but no settings of ... have been modified)).
  - Warnings the service returns are shown as task warnings.
author:
  - m365ops.exchange_online contributors (@m365ops)
extends_documentation_fragment:
  - m365ops.exchange_online.auth
  - m365ops.exchange_online.attributes.action_group
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: partial
    details:
      - C(Get-*) and C(Test-*) cmdlets run in check mode and return their output.
      - Any other cmdlet is not sent in check mode and is reported as changed (the service cannot predict it).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  cmdlet:
    description:
      - The cmdlet name in Verb-Noun form, for example V(Set-Mailbox) or V(Get-RetentionCompliancePolicy).
    type: str
    required: true
  parameters:
    description:
      - "The cmdlet's parameters, name to value, for example C({Identity: adele@contoso.com, AuditEnabled: true})."
      - A leading C(-) on a name is dropped. Use O(result_size) rather than a C(ResultSize) parameter.
    type: dict
    default: {}
  result_size:
    description:
      - The most objects to read, sent as C(-ResultSize) (a positive integer or V(unlimited)), for cmdlets that page.
      - Not sent when omitted, so the cmdlet's own default applies (1000 for C(Get-Mailbox)). When the list is cut,
        RV(truncated) is V(true) and the task warns.
    type: raw
  query:
    description:
      - A JMESPath expression applied to the output objects after all were read; its result replaces RV(result).
      - Checked before any request is made. Needs the C(jmespath) Python library.
    type: str
  service:
    description:
      - V(exchange) runs the cmdlet in Exchange Online.
      - V(security_compliance) runs it in Security & Compliance (Connect-IPPSSession cmdlets such as
        C(Get-RetentionCompliancePolicy) or C(Get-Label)), on the regional host found from the generic endpoint.
    type: str
    default: exchange
    choices: [exchange, security_compliance]
seealso:
  - module: m365ops.exchange_online.exo_mailbox_facts
  - module: m365ops.exchange_online.exo_connect
"""

EXAMPLES = r"""
- name: Turn on auditing of one mailbox
  m365ops.exchange_online.exo_command:
    organization: contoso.onmicrosoft.com
    app_id: "{{ exo_app_id }}"
    certificate_path: /etc/exo/app.pem
    cmdlet: Set-Mailbox
    parameters:
      Identity: adele.vance@contoso.com
      AuditEnabled: true
      AuditLogAgeLimit: "180.00:00:00"

- name: Let a delegate send on behalf of a shared mailbox (add, keep the others)
  m365ops.exchange_online.exo_command:
    cmdlet: Set-Mailbox
    parameters:
      Identity: finance@contoso.com
      GrantSendOnBehalfTo:
        add: [adele.vance@contoso.com]

- name: Accepted domains, names only
  m365ops.exchange_online.exo_command:
    cmdlet: Get-AcceptedDomain
    query: "[].DomainName"
  register: domains

- name: Retention policies in Security & Compliance
  m365ops.exchange_online.exo_command:
    service: security_compliance
    cmdlet: Get-RetentionCompliancePolicy
  register: policies
"""

RETURN = r"""
result:
  description:
    - The objects the cmdlet returned (annotation keys removed); with O(query), the query's result instead.
    - Empty for a cmdlet skipped in check mode and for cmdlets that return nothing (most C(Set-*)).
  returned: success
  type: raw
  sample:
    - DomainName: contoso.com
      Default: true
      DomainType: Authoritative
count:
  description: How many objects the cmdlet returned (before O(query)).
  returned: success
  type: int
  sample: 3
truncated:
  description: Whether O(result_size) (or the cmdlet's default result size) cut the output.
  returned: success
  type: bool
  sample: false
server_warnings:
  description: The warnings the service returned, also shown as task warnings.
  returned: success
  type: list
  elements: str
  sample: ["The command completed successfully but no settings of 'adele.vance' have been modified."]
"""

import re

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoConfigError
from ansible_collections.m365ops.exchange_online.plugins.module_utils._exo import (
    NO_CHANGE_RE,
    encode_parameters,
    normalize_result_size,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import ExoModule

CMDLET_RE = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
READ_VERBS = ("get", "test")


def is_read_only(cmdlet):
    return cmdlet.split("-", 1)[0].lower() in READ_VERBS


def main():
    module = ExoModule(
        argument_spec=dict(
            cmdlet=dict(type="str", required=True),
            parameters=dict(type="dict", default={}),
            result_size=dict(type="raw"),
            query=dict(type="str"),
            service=dict(type="str", default="exchange", choices=["exchange", "security_compliance"]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    cmdlet = params["cmdlet"].strip()
    expression = module.compile_query()
    try:
        if not CMDLET_RE.match(cmdlet):
            raise ExoConfigError("cmdlet must be one cmdlet name in Verb-Noun form (for example Set-Mailbox), got '%s'; "
                                 "give its arguments in parameters." % cmdlet)
        parameters = encode_parameters(params["parameters"])
        if any(name.lower() == "resultsize" for name in parameters):
            raise ExoConfigError("parameters: use the result_size option instead of a ResultSize parameter.")
        result_size = normalize_result_size(params.get("result_size"))
    except ExoConfigError as exc:
        module.fail_from_exception(exc)

    read_only = is_read_only(cmdlet)
    if module.check_mode and not read_only:
        module.exit_json(changed=True, result=[], count=0, truncated=False, server_warnings=[],
                         msg="%s was not run (check mode); it would be sent to the service." % cmdlet)

    output = []
    client = None
    try:
        client = module.exo_client(params["service"])
        for item in client.invoke(cmdlet, parameters, result_size=result_size):
            output.append(item)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_from_exception(exc)

    warnings = list(client.warnings)
    if client.truncated:
        module.warn("The output of %s was cut by its result size: more objects exist. Set result_size to a larger "
                    "number or to 'unlimited' to read them all." % cmdlet)
    changed = not read_only and not any(NO_CHANGE_RE.search(w) for w in warnings)
    result = output if expression is None else expression.search(output)
    module.exit_json(changed=changed, result=result, count=len(output), truncated=bool(client.truncated),
                     server_warnings=warnings)


if __name__ == "__main__":
    main()
