# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant simulator: Entra ID, Exchange Online REST, Microsoft Graph and WinRM workstations on loopback.

Start it with ``python -m tests.simulator --state-dir DIR``; see README.md in this directory.
"""

from __future__ import annotations
