"""Users, roles, API tokens, row-level scope and the audit log (product.md M12).

Knows nothing about the web framework: the web app authenticates with ``authenticate`` or
``resolve_token``, computes a ``Scope`` with ``scope_for``, filters with it, and records every
patient-level access with ``audit.record``. Call ``ensure_access_schema(db)`` once at start-up
(the functions here also create the tables on first use of a ``Database``).
"""

from parity.access.audit import AuditEntry, chain_head, entries, record, verify_chain
from parity.access.model import ORG_ROLES, PATIENT_LEVEL_ROLES, Actor, Role, User
from parity.access.schema import ensure_access_schema
from parity.access.scope import AREA_EDITORS, CASELOAD_MONTHS, Scope, may_edit_area, scope_for, trust_caseload
from parity.access.throttle import LoginThrottle
from parity.access.tokens import issue_token, resolve_token, revoke_token, revoke_tokens
from parity.access.users import (
    MIN_PASSWORD_LENGTH,
    add_user,
    authenticate,
    disable_user,
    get_user,
    known_username,
    list_users,
    set_password,
)
from parity.errors import AuthenticationError, NotFound, PermissionDenied, TooManyAttempts

__all__ = [
    "Actor",
    "AuditEntry",
    "AuthenticationError",
    "CASELOAD_MONTHS",
    "LoginThrottle",
    "known_username",
    "MIN_PASSWORD_LENGTH",
    "NotFound",
    "ORG_ROLES",
    "PATIENT_LEVEL_ROLES",
    "PermissionDenied",
    "Role",
    "Scope",
    "TooManyAttempts",
    "User",
    "add_user",
    "authenticate",
    "chain_head",
    "disable_user",
    "ensure_access_schema",
    "entries",
    "get_user",
    "issue_token",
    "list_users",
    "record",
    "resolve_token",
    "revoke_token",
    "revoke_tokens",
    "scope_for",
    "may_edit_area",
    "AREA_EDITORS",
    "set_password",
    "trust_caseload",
    "verify_chain",
]
