#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: exo_mailbox_facts
short_description: Read Exchange Online mailboxes as facts
version_added: 0.1.0
description:
  - Runs C(Get-Mailbox) through the Exchange Online REST endpoint (the surface the ExchangeOnlineManagement module uses)
    and returns the mailboxes as the fact RV(ansible_facts.exo_mailboxes), with the semantics of C(Get-EXOMailbox)
    property sets.
  - Reads page by page (1000 mailboxes per request) and never holds more than one page of the service's raw answer.
  - Byte quantities and timespans arrive as display strings (for example C(99 GB (106,300,440,576 bytes\)) and V(90.00:00:00));
    each one is also returned as a number next to it, for example C(ProhibitSendQuota_bytes) and
    C(AuditLogAgeLimit_seconds), so playbooks can compare them. V(Unlimited) becomes V(null).
  - Never changes anything; runs normally in check mode.
author:
  - m365ops.exchange_online contributors (@m365ops)
extends_documentation_fragment:
  - m365ops.exchange_online.auth
  - m365ops.exchange_online.attributes.read_only
  - m365ops.exchange_online.attributes.action_group
options:
  identity:
    description:
      - One mailbox, by anything C(Get-Mailbox -Identity) accepts (alias, name, primary SMTP address, UPN, GUID,
        distinguished name).
      - A mailbox that does not exist fails the task with the service's message, as the cmdlet does.
      - Mutually exclusive with O(filter).
    type: str
  filter:
    description:
      - An OPATH filter evaluated by the service, as C(Get-Mailbox -Filter), for example
        V(RecipientTypeDetails -eq 'SharedMailbox' -and DisplayName -like 'Finance*').
      - Only the operators the service supports server-side work (C(-eq), C(-ne), C(-like), C(-notlike), C(-and),
        C(-or), C(-not)); a filter the service cannot parse fails the task with its message.
    type: str
  recipient_type_details:
    description:
      - Only mailboxes of these types, as C(Get-Mailbox -RecipientTypeDetails), for example V(UserMailbox),
        V(SharedMailbox), V(RoomMailbox), V(EquipmentMailbox).
    type: list
    elements: str
  property_sets:
    description:
      - The property sets to return, as C(Get-EXOMailbox -PropertySets). V(Minimum) is Microsoft's minimum set
        (Alias, DisplayName, DistinguishedName, EmailAddresses, ExchangeVersion, ExternalDirectoryObjectId, Guid, Id,
        Name, OrganizationId, PrimarySmtpAddress, RecipientType, RecipientTypeDetails, UserPrincipalName).
      - Every other set adds its properties plus ExternalDirectoryObjectId. V(All) returns the full object (more than
        200 properties per mailbox; Microsoft discourages it for large reads).
      - The sets and O(properties) become one C($select) projection, so the service trims the objects.
    type: list
    elements: str
    default: [Minimum]
    choices: [All, AddressList, Archive, Audit, Custom, Delivery, Hold, Minimum, Moderation, Move, Policy, PublicFolder,
              Quota, Resource, Retention, SCL, SoftDelete, StatisticsSeed]
  properties:
    description:
      - More properties to return, by name, as C(Get-EXOMailbox -Properties), for example V(LitigationHoldEnabled).
    type: list
    elements: str
    default: []
  result_size:
    description:
      - The most mailboxes to read, as C(-ResultSize). A positive integer or V(unlimited).
      - The default V(1000) is the cmdlet's. When more mailboxes match, the list is cut, RV(truncated) is V(true)
        and the task warns.
    type: raw
    default: 1000
  query:
    description:
      - A JMESPath expression applied to the list of mailboxes after the whole list was read; its result replaces
        RV(ansible_facts.exo_mailboxes). For example V([?RecipientTypeDetails=='SharedMailbox'].PrimarySmtpAddress).
      - Checked before any request is made. Prefer O(filter) to select mailboxes, so the service sends fewer;
        O(query) is for shaping the result.
      - Needs the C(jmespath) Python library.
    type: str
notes:
  - Security & Compliance PowerShell has no C(Get-Mailbox); use M(m365ops.exchange_online.exo_command) with
    O(m365ops.exchange_online.exo_command#module:service=security_compliance) for its cmdlets.
seealso:
  - module: m365ops.exchange_online.exo_command
  - module: m365ops.exchange_online.exo_connect
  - name: Get-EXOMailbox property sets
    description: Microsoft's list of the properties in each set.
    link: https://learn.microsoft.com/powershell/exchange/cmdlet-property-sets
"""

EXAMPLES = r"""
- name: Read mailboxes with app-only sign-in
  module_defaults:
    group/m365ops.exchange_online.exo:
      organization: contoso.onmicrosoft.com
      app_id: "{{ exo_app_id }}"
      certificate_path: /etc/exo/app.pem
  block:
    - name: Every shared mailbox, with its quotas
      m365ops.exchange_online.exo_mailbox_facts:
        recipient_type_details: [SharedMailbox]
        property_sets: [Minimum, Quota]
        result_size: unlimited

    - name: Mailboxes close to their quota can be found by the numbers
      ansible.builtin.debug:
        msg: "{{ ansible_facts.exo_mailboxes | selectattr('ProhibitSendQuota_bytes', 'lt', 10 * 1024**3) | map(attribute='Alias') }}"

- name: One mailbox
  m365ops.exchange_online.exo_mailbox_facts:
    identity: lidia.haddad0@contoso.com
    property_sets: [Minimum, Audit]
  register: lidia

- name: Finance mailboxes by OPATH filter, only their addresses
  m365ops.exchange_online.exo_mailbox_facts:
    filter: "DisplayName -like 'Finance*'"
    result_size: unlimited
    query: "[].PrimarySmtpAddress"
"""

RETURN = r"""
ansible_facts:
  description: Facts set by the module.
  returned: success
  type: dict
  contains:
    exo_mailboxes:
      description:
        - The mailboxes, one dictionary each with the properties of the chosen sets (annotation keys removed), plus
          C(<Property>_bytes) for byte quantities and C(<Property>_seconds) for timespans.
        - With O(query), the query's result instead.
      type: list
      elements: raw
      sample:
        - Alias: adele.vance
          DisplayName: Adele Vance
          PrimarySmtpAddress: adele.vance@contoso.com
          RecipientTypeDetails: UserMailbox
          ProhibitSendQuota: 99 GB (106,300,440,576 bytes)
          ProhibitSendQuota_bytes: 106300440576
mailbox_count:
  description: How many mailboxes the service returned (before O(query)).
  returned: success
  type: int
  sample: 2500
truncated:
  description: Whether O(result_size) cut the list (more mailboxes match).
  returned: success
  type: bool
  sample: false
"""

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import ExoConfigError
from ansible_collections.m365ops.exchange_online.plugins.module_utils._exo import (
    ALL_PROPERTY_SET,
    PROPERTY_SETS,
    SharedValues,
    add_numeric_values,
    normalize_result_size,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import ExoModule

SET_CHOICES = [ALL_PROPERTY_SET] + sorted(PROPERTY_SETS)


def selection(property_sets, properties):
    """The $select list for the sets and extra properties; None means the full object (All)."""
    if ALL_PROPERTY_SET in property_sets:
        return None
    names = []
    for name in property_sets:
        for prop in PROPERTY_SETS[name]:
            if prop not in names:
                names.append(prop)
    for prop in properties:
        if prop not in names:
            names.append(prop)
    return names


def build_parameters(params):
    parameters = {}
    if params.get("identity"):
        parameters["Identity"] = params["identity"]
    if params.get("filter"):
        parameters["Filter"] = params["filter"]
    if params.get("recipient_type_details"):
        parameters["RecipientTypeDetails"] = params["recipient_type_details"]
    return parameters


def main():
    module = ExoModule(
        argument_spec=dict(
            identity=dict(type="str"),
            filter=dict(type="str"),
            recipient_type_details=dict(type="list", elements="str"),
            property_sets=dict(type="list", elements="str", default=["Minimum"], choices=SET_CHOICES),
            properties=dict(type="list", elements="str", default=[]),
            result_size=dict(type="raw", default=1000),
            query=dict(type="str"),
        ),
        mutually_exclusive=[["identity", "filter"]],
        supports_check_mode=True,
    )
    params = module.params
    expression = module.compile_query()
    try:
        result_size = normalize_result_size(params["result_size"])
        for prop in params["properties"]:
            if not prop or not prop.replace("_", "").isalnum() or not prop[0].isalpha():
                raise ExoConfigError("properties: '%s' is not a property name (letters and digits, for example "
                                     "LitigationHoldEnabled)." % prop)
    except ExoConfigError as exc:
        module.fail_from_exception(exc)

    select = selection(params["property_sets"] or ["Minimum"], params["properties"])
    parameters = build_parameters(params)
    mailboxes = []
    client = None
    try:
        client = module.exo_client("exchange")
        # With -Identity the cmdlet returns one object; ResultSize is not sent then.
        size = None if params.get("identity") else result_size
        shared = SharedValues()
        for item in client.invoke("Get-Mailbox", parameters, result_size=size, select=select):
            mailboxes.append(add_numeric_values(shared.share(item)))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_from_exception(exc)

    truncated = bool(client.truncated)
    if truncated:
        module.warn("result_size=%s cut the list: more mailboxes match. Set result_size to a larger number or to "
                    "'unlimited' to read them all." % params["result_size"])
    count = len(mailboxes)
    facts = mailboxes if expression is None else expression.search(mailboxes)
    module.exit_json(changed=False, ansible_facts=dict(exo_mailboxes=facts), mailbox_count=count, truncated=truncated)


if __name__ == "__main__":
    main()
