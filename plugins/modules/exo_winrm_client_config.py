# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds documentation only: the work is done on the controller by the action plugin of the same name
# (plugins/action/exo_winrm_client_config.py), since Windows hosts run no Python.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: exo_winrm_client_config
short_description: Read and set a Windows host's WinRM client authentication, AllowUnencrypted and TrustedHosts
version_added: 0.1.0
description:
  - Reads and changes the B(WinRM client) configuration of a Windows host (C(winrm/config/client) and
    C(winrm/config/client/auth)), which is what C(winrm get winrm/config/client) and
    C(winrm set winrm/config/client/auth @{Basic="true"}) do, without running a command on the host.
  - The Exchange Online PowerShell guides ask every admin workstation for WinRM client Basic authentication
    (the older remote-PowerShell modules fail with I(The WinRM client cannot process the request. Basic authentication
    is currently disabled in the client configuration) without it). This module sets it, verifies it, and later
    hardens it again on any number of hosts.
  - Runs on the controller as an action plugin and speaks WS-Management to the host through the host's own
    C(winrm) connection (its authenticated pywinrm session, so the inventory's C(ansible_winrm_transport), credentials
    and message encryption apply; there are no connection options of its own). The host must use
    C(ansible_connection=winrm); other connections fail with a message saying so.
  - One WS-Transfer Get of C(http://schemas.microsoft.com/wbem/wsman/1/config/client) reads every setting, so a
    compliant host costs one round trip and no write. Changes are partial WS-Transfer Puts carrying only the elements
    that differ, to C(.../config/client/auth) for the authentication settings and C(.../config/client) for
    O(allow_unencrypted) and O(trusted_hosts).
  - Options that are omitted are left as they are.
  - A setting held by Group Policy (C([Source="GPO"]) in C(winrm get) output) cannot be changed locally. When the task
    asks to change one, the module names it with its policy registry value under
    C(HKLM\\Software\\Policies\\Microsoft\\Windows\\WinRM\\Client) and fails (O(policy_controlled=fail)), or reports
    it as a warning and changes the rest (O(policy_controlled=warn)). Held settings are never skipped silently.
author:
  - m365ops.exchange_online contributors (@m365ops)
options:
  basic:
    description:
      - Allow the WinRM client to use Basic authentication (C(Auth/Basic)).
      - Needed only by the older remote-PowerShell ways of connecting (the V1 MFA module, C(New-PSSession) with
        C(-Authentication Basic) to C(outlook.office365.com/powershell-liveid), on-premises Exchange). The REST-based
        Exchange Online PowerShell module 3.x and the modules of this collection do not need it.
      - Policy registry value C(AllowBasic).
    type: bool
  digest:
    description:
      - Allow the WinRM client to use Digest authentication (C(Auth/Digest)). Policy registry value C(AllowDigest).
    type: bool
  kerberos:
    description:
      - Allow the WinRM client to use Kerberos authentication (C(Auth/Kerberos)). Policy registry value C(AllowKerberos).
    type: bool
  negotiate:
    description:
      - Allow the WinRM client to use Negotiate authentication (C(Auth/Negotiate)). Policy registry value C(AllowNegotiate).
    type: bool
  certificate:
    description:
      - Allow the WinRM client to use client certificate authentication (C(Auth/Certificate)). No client policy exists for it.
    type: bool
  credssp:
    description:
      - Allow the WinRM client to use CredSSP authentication (C(Auth/CredSSP)). Policy registry value C(AllowCredSSP).
    type: bool
  allow_unencrypted:
    description:
      - Allow the WinRM client to send and receive unencrypted messages over HTTP (C(AllowUnencrypted)).
      - Keep this V(false). With Basic authentication over HTTP it would send credentials in the clear; the module
        warns when a host ends up with both O(basic) and O(allow_unencrypted) enabled.
      - Policy registry value C(AllowUnencryptedTraffic).
    type: bool
  trusted_hosts:
    description:
      - Hosts the WinRM client may authenticate to without Kerberos (C(TrustedHosts)), given as names, IP addresses or patterns
        such as V(*.corp.example) or V(*).
      - Compared case-insensitively as the comma-separated list WinRM keeps, ignoring order, blanks and duplicates.
        A list item may itself hold several comma-separated hosts.
      - How the list is applied is set by O(trusted_hosts_mode).
      - Policy registry values C(TrustedHosts) and C(TrustedHostsList).
    type: list
    elements: str
  trusted_hosts_mode:
    description:
      - V(add) adds the hosts of O(trusted_hosts) that are missing and keeps the others (adding a present host is no
        change).
      - V(remove) removes the hosts of O(trusted_hosts) and keeps the others.
      - V(set) makes the list exactly O(trusted_hosts) (V([]) empties it).
    type: str
    choices: [add, remove, set]
    default: add
  policy_controlled:
    description:
      - What to do when the task asks to change a setting that Group Policy holds.
      - V(fail) fails the task, naming the setting and its policy registry value, before any change is made.
      - V(warn) reports the setting as a warning, leaves it alone and applies the other changes.
    type: str
    choices: [fail, warn]
    default: fail
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - In check mode only the Get is sent; nothing is written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - The diff holds the settings the task names, before and after.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: windows
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  bypass_host_loop:
    description: Forces a 'global' task that does not execute per host, this bypasses per host templating and serial,
      throttle and other loop considerations.
    support: none
notes:
  - The account in the inventory must be a member of the host's local Administrators group to change WinRM configuration.
  - Windows answers a Put on a policy-held setting with WSManFault 2150858890 (C(0x8033808A)); the module reads the
    C(Source="GPO") marker first, so it reports the policy before trying. Setting the policy to I(Not Configured) (or
    changing the GPO) is the fix; writing under C(HKLM\\Software\\Policies) is undone by the next Group Policy refresh.
  - Microsoft's security baselines disable WinRM client Basic authentication. Enable it only where a legacy tool
    needs it, keep O(allow_unencrypted=false) and connect over HTTPS.
  - The connection to the host is made the usual way (for example C(ansible_winrm_transport=ntlm) with message
    encryption over HTTP, or C(basic)/C(ssl) over HTTPS); this module adds no options for it.
seealso:
  - name: WinRM client configuration settings
    description: Installation and configuration for Windows Remote Management.
    link: https://learn.microsoft.com/windows/win32/winrm/installation-and-configuration-for-windows-remote-management
  - name: Connect to Exchange Online PowerShell
    description: The guide whose prerequisites ask for WinRM Basic authentication (only for older module versions).
    link: https://learn.microsoft.com/powershell/exchange/connect-to-exchange-online-powershell
  - name: Windows Remote Management policy settings
    description: The Group Policy settings and registry values that hold WinRM client settings.
    link: https://learn.microsoft.com/windows/client-management/mdm/policy-csp-remotemanagement
"""

EXAMPLES = r"""
- name: Read the WinRM client configuration (nothing is changed)
  m365ops.exchange_online.exo_winrm_client_config:
  check_mode: true
  register: winrm_client

- name: Show whether Basic is enabled and whether a policy holds it
  ansible.builtin.debug:
    msg: "Basic={{ winrm_client.before.basic }} policy={{ winrm_client.policy_controlled }}"

- name: Enable WinRM client Basic authentication, keep unencrypted traffic off
  m365ops.exchange_online.exo_winrm_client_config:
    basic: true
    allow_unencrypted: false

- name: Add the Exchange servers to TrustedHosts, keeping the entries already there
  m365ops.exchange_online.exo_winrm_client_config:
    trusted_hosts:
      - exch01.corp.example
      - exch02.corp.example
    trusted_hosts_mode: add

- name: Harden a workstation that no longer needs Basic; report (do not fail) where a GPO holds it
  m365ops.exchange_online.exo_winrm_client_config:
    basic: false
    trusted_hosts: []
    trusted_hosts_mode: set
    policy_controlled: warn
"""

RETURN = r"""
before:
  description:
    - The WinRM client settings the host reported before the task.
  returned: success, and when a setting held by policy fails the task
  type: dict
  contains:
    basic:
      description: C(Auth/Basic).
      type: bool
      sample: false
    digest:
      description: C(Auth/Digest).
      type: bool
      sample: true
    kerberos:
      description: C(Auth/Kerberos).
      type: bool
      sample: true
    negotiate:
      description: C(Auth/Negotiate).
      type: bool
      sample: true
    certificate:
      description: C(Auth/Certificate).
      type: bool
      sample: true
    credssp:
      description: C(Auth/CredSSP).
      type: bool
      sample: false
    allow_unencrypted:
      description: C(AllowUnencrypted).
      type: bool
      sample: false
    trusted_hosts:
      description: C(TrustedHosts) as a list.
      type: list
      elements: str
      sample: ["exch01.corp.example"]
  sample:
    basic: false
    digest: true
    kerberos: true
    negotiate: true
    certificate: true
    credssp: false
    allow_unencrypted: false
    trusted_hosts: []
after:
  description:
    - The WinRM client settings after the task, with the same keys as RV(before).
    - After a change these are the values the host reported in its Put response; in check mode, the predicted values.
  returned: success
  type: dict
  sample:
    basic: true
    digest: true
    kerberos: true
    negotiate: true
    certificate: true
    credssp: false
    allow_unencrypted: false
    trusted_hosts: []
policy_controlled:
  description:
    - Every client setting the host reports as held by Group Policy (C(Source="GPO")), whether or not the task asked
      to change it.
  returned: always, when the host was read
  type: list
  elements: dict
  contains:
    option:
      description: The option of this module that maps to the setting.
      type: str
      sample: basic
    element:
      description: The setting in the WinRM configuration.
      type: str
      sample: Auth/Basic
    value:
      description: The value the policy enforces.
      type: raw
      sample: false
    policy:
      description: The policy registry value(s) that hold the setting.
      type: str
      sample: HKLM\Software\Policies\Microsoft\Windows\WinRM\Client\AllowBasic
    requested:
      description: The value the task asked for, or V(null) when the task does not name the setting.
      type: raw
      sample: true
    conflict:
      description: Whether the task asked for a value other than the one the policy enforces.
      type: bool
      sample: true
  sample:
    - option: basic
      element: Auth/Basic
      value: false
      policy: HKLM\Software\Policies\Microsoft\Windows\WinRM\Client\AllowBasic
      requested: true
      conflict: true
written:
  description:
    - Whether the task sent a Put to the host. V(false) in check mode, when nothing differed, and when a setting held by
      policy failed the task before any write.
  returned: when the host was read
  type: bool
  sample: true
wsman_fault_code:
  description: The WSManFault code of a failed request (for example V(2150858890) for a setting held by policy).
  returned: when a WS-Management request failed with a fault
  type: int
  sample: 2150858890
"""
