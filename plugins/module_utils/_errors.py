# -*- coding: utf-8 -*-
# Copyright (c) m365ops.exchange_online contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the m365ops.exchange_online collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Exceptions shared by every layer of the collection.

Every exception carries a message that is already actionable and free of secrets, so the one
error path (``ExoModule.fail_from_exception``) can hand it to the user unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ExoError(Exception):
    """Base error: ``message`` for people, ``status``/``code``/``details`` for playbooks."""

    def __init__(self, message, status=None, code=None, details=None):
        super(ExoError, self).__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = dict(details or {})

    def __str__(self):
        return self.message

    def to_result(self):
        """The keys ``fail_json`` receives besides ``msg`` (only those that are set)."""
        result = {}
        if self.status is not None:
            result["status"] = self.status
        if self.code is not None:
            result["code"] = self.code
        if self.details:
            result["details"] = self.details
        return result


class ExoAuthError(ExoError):
    """Sign-in problems: wrong credentials, missing consent or role, unreachable identity provider."""


class ExoHttpError(ExoError):
    """Transport or HTTP failure that survived the retries."""


class ExoServiceError(ExoError):
    """A cmdlet or Graph error reported by the service."""

    def __init__(self, message, status=None, code=None, details=None, error_id=None, exception_type=None):
        super(ExoServiceError, self).__init__(message, status=status, code=code, details=details)
        self.error_id = error_id
        self.exception_type = exception_type

    def to_result(self):
        result = super(ExoServiceError, self).to_result()
        if self.error_id is not None:
            result["error_id"] = self.error_id
        if self.exception_type is not None:
            result["exception_type"] = self.exception_type
        return result


class ExoConfigError(ExoError):
    """Bad or contradictory options, raised before any request is made."""
