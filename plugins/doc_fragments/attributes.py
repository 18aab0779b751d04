# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Shared ``attributes`` blocks for the collection's modules.

    Use ``m365ops.exchange_online.attributes`` for the common case (full check and diff mode,
    runs where the task runs) and add ``m365ops.exchange_online.attributes.action_group`` for
    every module in the ``exo`` action group. Read-only modules use ``attributes.read_only`` instead;
    a module whose support differs declares its own ``attributes`` block.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
    details:
      - Runs where the task runs (usually C(localhost) or an execution environment) and talks HTTPS to the service.
"""

    # For modules that only read: they run normally in check mode and have nothing to diff.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - The module only reads, so it runs normally in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
    details:
      - Runs where the task runs (usually C(localhost) or an execution environment) and talks HTTPS to the service.
"""

    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/m365ops.exchange_online.exo) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - m365ops.exchange_online.exo
"""
