"""User accounts: creation, password sign-in, listing, password change and disabling.

Passwords are hashed with Argon2id (argon2-cffi's ``PasswordHasher`` defaults) and never stored,
logged or returned. ``authenticate`` gives one generic error for every failure and spends the same
Argon2 time whether or not the username exists, so neither the message nor the response time tells
an attacker which usernames are real.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from parity.access.model import ORG_ROLES, Role, User
from parity.access.schema import ready
from parity.db import Database
from parity.db.transactions import atomic, utc_now
from parity.errors import AuthenticationError, ConfigurationError, NotFound

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
# Trusts are not in the practices table, so any ODS-shaped code is accepted for them.
ODS_CODE_RE = re.compile(r"^[A-Z0-9]{3,6}$")
MIN_PASSWORD_LENGTH = 12
# Argon2 cost grows with input length; a cap stops a megabyte "password" being used to burn CPU.
MAX_PASSWORD_LENGTH = 1024
GENERIC_LOGIN_ERROR = "unknown username or wrong password"

_hasher = PasswordHasher()
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()

_USER_COLUMNS = "username, role, org_code, created_at, disabled_at"


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and looked up in lower case."""
    return username.strip().lower()


def add_user(db: Database, username: str, role: Role | str, org_code: str | None, password: str) -> User:
    """Create an account and return it.

    ``org_code`` is required for practice, pcn, icb and trust users and must exist: a practice,
    PCN or ICB code in ``practices`` (any structure), or for a trust any ODS-shaped code.
    Programme users may name a region or ICB code, admins any ODS-shaped code, or neither.
    Raises ``ConfigurationError`` for a bad or duplicate username, role, organisation or password.
    """
    ready(db)
    name = normalise_username(username)
    if not USERNAME_RE.match(name):
        raise ConfigurationError("username must be 3-64 characters: lower-case letters, digits, '.', '_' or '-', "
                                 "starting with a letter or digit")
    role = _role(role)
    org = _check_org(db, role, org_code)
    password_hash = _hash_password(password)
    with atomic(db):
        if db.execute("SELECT 1 FROM users WHERE username = ?", [name]):
            raise ConfigurationError(f"user {name!r} already exists")
        created = utc_now()
        db.execute("INSERT INTO users (username, role, org_code, password_hash, created_at, disabled_at) "
                   "VALUES (?, ?, ?, ?, ?, NULL)", [name, role.value, org, password_hash, created])
    return User(name, role, org, created, disabled=False)


def authenticate(db: Database, username: str, password: str) -> User:
    """The user with this username and password, or ``AuthenticationError`` (one message for every cause).

    Disabled accounts are refused with the same message. A stored hash made with older Argon2
    parameters is upgraded on a successful sign-in.
    """
    ready(db)
    name = normalise_username(username)
    rows = db.execute("SELECT password_hash, disabled_at FROM users WHERE username = ?", [name])
    if not rows or not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        # Same Argon2 work as a real check, so timing does not reveal whether the user exists.
        _verify(_dummy(), password if isinstance(password, str) else "")
        raise AuthenticationError(GENERIC_LOGIN_ERROR)
    stored, disabled_at = rows[0]
    if not _verify(stored, password) or disabled_at is not None:
        raise AuthenticationError(GENERIC_LOGIN_ERROR)
    if _hasher.check_needs_rehash(stored):
        db.execute("UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), name])
    return get_user(db, name)


def known_username(db: Database, typed: str) -> str | None:
    """The account name ``typed`` refers to, or None: lets a failed sign-in be recorded against a real
    account without ever storing what a stranger typed (issue 12 finding 8)."""
    name = normalise_username(str(typed or ""))
    if not USERNAME_RE.match(name):
        return None
    ready(db)
    rows = db.execute("SELECT username FROM users WHERE username = ?", [name])
    return str(rows[0][0]) if rows else None


def get_user(db: Database, username: str) -> User:
    """The account named ``username`` (disabled or not), or ``NotFound``."""
    ready(db)
    rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", [normalise_username(username)])
    if not rows:
        raise NotFound("no such user")
    return _user(rows[0])


def list_users(db: Database) -> list[User]:
    """Every account, disabled ones included, by username."""
    ready(db)
    return [_user(r) for r in db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")]


def set_password(db: Database, username: str, password: str) -> None:
    """Replace a user's password (same length rules as ``add_user``); ``NotFound`` if no such user."""
    ready(db)
    name = normalise_username(username)
    password_hash = _hash_password(password)
    with atomic(db):
        if not db.execute("SELECT 1 FROM users WHERE username = ?", [name]):
            raise NotFound("no such user")
        db.execute("UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, name])
        _end_sessions(db, name)


def _end_sessions(db: Database, name: str) -> None:
    """A changed password or a disabled account ends the user's browser sessions (issue 12 finding 5)."""
    from parity.access.sessions import end_sessions

    end_sessions(db, name)


def disable_user(db: Database, username: str) -> User:
    """Disable an account: it can no longer sign in or use its API tokens. Idempotent.

    Accounts are disabled rather than deleted so the audit log keeps pointing at a real account.
    """
    ready(db)
    name = normalise_username(username)
    with atomic(db):
        if not db.execute("SELECT 1 FROM users WHERE username = ?", [name]):
            raise NotFound("no such user")
        db.execute("UPDATE users SET disabled_at = ? WHERE username = ? AND disabled_at IS NULL", [utc_now(), name])
        _end_sessions(db, name)
    return get_user(db, name)


# -- helpers -------------------------------------------------------------------------------------

def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ConfigurationError(f"role must be one of {', '.join(r.value for r in Role)}") from None


def _check_org(db: Database, role: Role, org_code: str | None) -> str | None:
    org = (org_code or "").strip().upper() or None
    if org is None:
        if role in ORG_ROLES:
            raise ConfigurationError(f"a {role.value} user needs --org (the organisation's ODS code)")
        return None
    if not ODS_CODE_RE.match(org):
        raise ConfigurationError("organisation code must be 3-6 letters or digits (an ODS code)")
    # Column names come from this fixed mapping, never from input.
    columns = {
        Role.practice: ("practice_code",),
        Role.pcn: ("pcn_code",),
        Role.icb: ("icb_code",),
        Role.programme: ("region_code", "icb_code"),
    }.get(role)
    if columns is None:  # trust, admin: not in the practices table
        return org
    where = " OR ".join(f"{c} = ?" for c in columns)
    if not db.execute(f"SELECT 1 FROM practices WHERE {where} LIMIT 1", [org] * len(columns)):
        kind = {Role.practice: "practice", Role.pcn: "PCN", Role.icb: "ICB", Role.programme: "region or ICB"}[role]
        raise ConfigurationError(f"unknown {kind} code {org} (not in the loaded organisation hierarchy)")
    return org


def _hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ConfigurationError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("parity-timing-equaliser-not-a-password")
        return _dummy_hash


def _user(row: tuple) -> User:
    username, role, org_code, created_at, disabled_at = row
    return User(username, Role(role), org_code, _naive(created_at), disabled=disabled_at is not None)


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value
