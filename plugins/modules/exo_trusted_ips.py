#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: exo_trusted_ips
short_description: Keep an Entra ID IP named location of trusted ranges (the guides' "Trusted IPs")
version_added: 0.1.0
description:
  - Creates, updates or deletes an Entra ID B(IP named location) through Microsoft Graph
    (C(/v1.0/identity/conditionalAccess/namedLocations)) and marks it trusted.
  - This is the current, supported form of the "Trusted IPs" the Exchange Online PowerShell guides ask for
    ("if you have servers in a datacenter, be sure to add their public IP addresses to Trusted IPs").
    The legacy per-user MFA trusted-IP list has no API.
  - The location is found by its display name O(name) among IP named locations. More than one IP named
    location with that name is an error (rename or delete the extra ones first).
  - Every range is validated and normalised before any request is made, so a bad list fails without touching the
    tenant. A bare address becomes C(/32) (IPv4) or C(/128) (IPv6); IPv6 is written compressed in lower case.
  - A range with host bits set (V(192.0.2.7/24)) is rejected rather than widened to its network, because trusting a
    whole network when one host was meant would let everyone in it skip MFA. The error names the two possible fixes.
  - Prefixes must be longer than C(/8) (Entra ID refuses C(/8) and shorter masks; the collection applies the same rule to
    IPv6) and a location holds at most 2,000 ranges; a tenant holds at most 195 named locations.
  - Duplicate ranges are dropped with a warning. Ranges that overlap (one contains another) are kept and reported as a
    warning. Internal ranges (RFC 1918, shared address space, loopback, link-local, IPv6 unique-local) are kept and
    reported as a warning, since Entra ID only ever sees the public egress address of a network.
  - Ranges are compared as a set, so their order never causes a change.
  - A trusted location alone does not skip MFA. A Conditional Access policy that requires MFA must exclude the trusted
    locations (for example V(AllTrusted) in the policy's C(excludeLocations)); see the
    P(m365ops.exchange_online.trusted_ips#role) role.
author:
  - m365ops.exchange_online contributors (@m365ops)
extends_documentation_fragment:
  - m365ops.exchange_online.auth
  - m365ops.exchange_online.attributes
  - m365ops.exchange_online.attributes.action_group
notes:
  - The app (or the signed-in user) needs the Microsoft Graph permission C(Policy.ReadWrite.ConditionalAccess) to change
    named locations and C(Policy.Read.All) or C(Policy.ReadWrite.ConditionalAccess) to read them. Without it the task
    fails with a message naming the permission.
  - Microsoft Graph is reached at O(graph_uri), which follows O(exchange_environment_name) (for example
    C(https://graph.microsoft.us) for C(O365USGovGCCHigh)).
  - In check mode the module reads the tenant and predicts the result; a location it would create has the placeholder
    id C(00000000-0000-0000-0000-000000000000).
  - A trusted location cannot be deleted while it is trusted, so O(state=absent) first removes the trusted mark and
    then deletes the location.
  - Entra ID applies a change to sign-ins within about an hour (the lifetime of the tokens it has already issued).
seealso:
  - name: Microsoft Graph ipNamedLocation resource
    description: The object this module manages.
    link: https://learn.microsoft.com/graph/api/resources/ipnamedlocation
  - name: Network location in Conditional Access
    description: What a trusted location is used for, and its limits.
    link: https://learn.microsoft.com/entra/identity/conditional-access/concept-assignment-network
options:
  name:
    description:
      - Display name of the IP named location.
    type: str
    required: true
    aliases: [display_name]
  ip_ranges:
    description:
      - IPv4 and IPv6 ranges in CIDR notation, or single addresses (they become C(/32) or C(/128)).
      - With O(append=false) this is the whole list the location holds afterwards.
      - With O(append=true) these ranges are added to the ones the location already holds.
      - Required to create the location. When the location exists and this is omitted, its ranges are left as they are.
      - Not allowed with O(state=absent) (that deletes the whole location).
    type: list
    elements: str
  append:
    description:
      - Add O(ip_ranges) to the ranges the location already holds instead of replacing them.
    type: bool
    default: false
  trusted:
    description:
      - Whether the location is marked trusted (part of the built-in C(AllTrusted) location of Conditional Access).
    type: bool
    default: true
  state:
    description:
      - V(present) creates or updates the location.
      - V(absent) removes the trusted mark if it is set and deletes the location.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Trust the datacenter's egress ranges
  m365ops.exchange_online.exo_trusted_ips:
    organization: contoso.onmicrosoft.com
    app_id: "{{ exo_app_id }}"
    certificate_path: /etc/exo/automation.pem
    name: Datacenter egress
    ip_ranges:
      - 203.0.113.0/26
      - 198.51.100.17
      - 2001:db8:4006::/48
  register: location

- name: Show the named location
  ansible.builtin.debug:
    var: location.named_location

- name: Add one more range to what the location already holds, with the connection options set once
  module_defaults:
    group/m365ops.exchange_online.exo:
      organization: contoso.onmicrosoft.com
      app_id: "{{ exo_app_id }}"
      certificate_path: /etc/exo/automation.pem
  m365ops.exchange_online.exo_trusted_ips:
    name: Datacenter egress
    ip_ranges: [192.0.2.44]
    append: true

- name: Keep the ranges in a location that is not trusted
  m365ops.exchange_online.exo_trusted_ips:
    name: Partner offices
    ip_ranges: [198.51.100.0/24]
    trusted: false

- name: Remove the location (untrusted first, then deleted)
  m365ops.exchange_online.exo_trusted_ips:
    name: Datacenter egress
    state: absent
"""

RETURN = r"""
named_location:
  description:
    - The IP named location after the task (predicted in check mode).
    - An empty dictionary when O(state=absent).
  returned: always
  type: dict
  contains:
    id:
      description: Object id of the location; C(00000000-0000-0000-0000-000000000000) for one check mode would create.
      type: str
      sample: 0854951d-5fc0-4eb1-b392-9b2c9d7949c2
    display_name:
      description: Display name.
      type: str
      sample: Datacenter egress
    is_trusted:
      description: Whether the location is trusted.
      type: bool
      sample: true
    ip_ranges:
      description: The ranges, as canonical CIDR strings.
      type: list
      elements: str
      sample: ["203.0.113.0/26", "198.51.100.17/32", "2001:db8:4006::/48"]
    created_date_time:
      description: When the location was created (ISO 8601 UTC); null for a location check mode would create.
      type: str
      sample: "2026-11-21T23:50:12.5216549Z"
    modified_date_time:
      description: When the location was last changed (ISO 8601 UTC); null when check mode predicts a change.
      type: str
      sample: "2026-11-21T23:50:12.5216549Z"
"""

from ansible_collections.m365ops.exchange_online.plugins.module_utils._errors import (
    ExoConfigError,
    ExoError,
    ExoServiceError,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._graph import (
    IP_NAMED_LOCATION,
    MAX_NAMED_LOCATIONS,
    MAX_RANGES,
    PLACEHOLDER_ID,
    canonical_existing,
    location_result,
    normalize_ranges,
    overlap_warnings,
    range_body,
    same_ranges,
)
from ansible_collections.m365ops.exchange_online.plugins.module_utils._module import ExoModule

MAX_NAME_LENGTH = 256


def find_location(client, name):
    """The one IP named location called ``name`` (exact match), or None."""
    matches = [loc for loc in client.list_ip_named_locations() if loc.get("displayName") == name]
    if len(matches) > 1:
        ids = [loc.get("id") for loc in matches]
        raise ExoServiceError(
            "There are %d IP named locations named '%s' (ids %s); the module cannot tell which one to manage. Rename or "
            "delete all but one (Entra admin center > Protection > Conditional Access > Named locations) and run again."
            % (len(matches), name, ", ".join(ids)),
            details={"ids": ids})
    return matches[0] if matches else None


def ensure_present(module, client, name, ranges, trusted, append):
    current = find_location(client, name)
    if current is None:
        if ranges is None:
            raise ExoConfigError("ip_ranges is required to create the named location '%s' (it does not exist yet)." % name)
        body = {"@odata.type": IP_NAMED_LOCATION, "displayName": name, "isTrusted": trusted,
                "ipRanges": [range_body(r) for r in ranges]}
        count = client.count_named_locations()
        if count >= MAX_NAMED_LOCATIONS:
            raise ExoServiceError(
                "The tenant already holds %d named locations, the most Entra ID allows (%d); delete unused ones or add "
                "these ranges to an existing location." % (count, MAX_NAMED_LOCATIONS))
        if module.check_mode:
            predicted = dict(body, id=PLACEHOLDER_ID, createdDateTime=None, modifiedDateTime=None)
            return True, {}, location_result(predicted)
        created = client.create_named_location(body)
        return True, {}, location_result(created)

    before = location_result(current)
    existing = canonical_existing(current.get("ipRanges"))
    if ranges is None:
        target = existing
    elif append:
        known = set(existing)
        added = [r for r in ranges if r not in known]
        target = existing + added
        if len(target) > MAX_RANGES:
            raise ExoConfigError(
                "Appending %d ranges to the %d that '%s' holds makes %d; an Entra ID named location holds at most %d."
                % (len(added), len(existing), name, len(target), MAX_RANGES))
        for warning in overlap_warnings(target, new=added):
            module.warn(warning)
    else:
        target = ranges

    patch = {}
    if not same_ranges(target, existing):
        patch["ipRanges"] = [range_body(r) for r in target]
    if bool(current.get("isTrusted", False)) != trusted:
        patch["isTrusted"] = trusted
    if not patch:
        return False, before, before

    if module.check_mode:
        after = dict(before, is_trusted=trusted, ip_ranges=list(target), modified_date_time=None)
        return True, before, after
    client.update_named_location(current["id"], patch)
    # PATCH answers 204 without a body: read the location back for the result.
    return True, before, location_result(client.get_named_location(current["id"]))


def ensure_absent(module, client, name):
    current = find_location(client, name)
    if current is None:
        return False, {}, {}
    before = location_result(current)
    if not module.check_mode:
        if current.get("isTrusted"):
            # A trusted location cannot be deleted; remove the trusted mark first.
            client.update_named_location(current["id"], {"isTrusted": False})
        client.delete_named_location(current["id"])
    return True, before, {}


def main():
    module = ExoModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["display_name"]),
            ip_ranges=dict(type="list", elements="str"),
            append=dict(type="bool", default=False),
            trusted=dict(type="bool", default=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    name = (params["name"] or "").strip()
    result = dict(changed=False, named_location={})
    try:
        # Everything below up to graph_client() runs before any request.
        if not name:
            raise ExoConfigError("name must not be empty: give the display name of the IP named location.")
        if len(name) > MAX_NAME_LENGTH:
            raise ExoConfigError("name is %d characters long; a named location's display name holds at most %d."
                                 % (len(name), MAX_NAME_LENGTH))
        if params["state"] == "absent" and params["ip_ranges"] is not None:
            raise ExoConfigError("ip_ranges cannot be used with state=absent, which deletes the whole location '%s'. To "
                                 "remove some ranges, use state=present with the ranges to keep." % name)
        ranges, warnings = normalize_ranges(params["ip_ranges"])
        if ranges is not None and not ranges:
            raise ExoConfigError("ip_ranges is empty; a named location needs at least one range. To remove the location, "
                                 "use state=absent.")
        for warning in warnings:
            module.warn(warning)

        client = module.graph_client()
        if params["state"] == "present":
            changed, before, after = ensure_present(module, client, name, ranges, params["trusted"], params["append"])
        else:
            changed, before, after = ensure_absent(module, client, name)
        result.update(changed=changed, named_location=after)
        if module._diff and changed:
            result["diff"] = {"before": before, "after": after}
    except ExoError as exc:
        module.fail_from_exception(exc)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_from_exception(exc, msg="exo_trusted_ips failed")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
