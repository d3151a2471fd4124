"""API tokens: long random bearer secrets for the JSON API, one user each.

A token is ``parity_`` + 32 random bytes (URL-safe base64). Only its SHA-256 is stored: the
token has 256 bits of entropy, so a fast unsalted hash is enough (there is nothing to brute-force),
and a stolen ``api_tokens`` table does not grant access. The plain token is shown once, at issue.
"""

from __future__ import annotations

import hashlib
import secrets

from parity.access.model import User
from parity.access.schema import ready
from parity.access.users import _user, get_user, normalise_username
from parity.db import Database
from parity.db.transactions import atomic, utc_now
from parity.errors import AuthenticationError, ConfigurationError

TOKEN_PREFIX = "parity_"
MAX_LABEL_LENGTH = 200
GENERIC_TOKEN_ERROR = "unknown or revoked API token"


def token_hash(token: str) -> str:
    """The SHA-256 hex digest stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(db: Database, username: str, label: str | None = None) -> str:
    """A new token for ``username``; returned once and never stored in plain.

    ``NotFound`` if there is no such user, ``ConfigurationError`` if the account is disabled.
    """
    ready(db)
    user = get_user(db, username)
    if user.disabled:
        raise ConfigurationError(f"user {user.username!r} is disabled")
    if label is not None and len(label) > MAX_LABEL_LENGTH:
        raise ConfigurationError(f"token label must be at most {MAX_LABEL_LENGTH} characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.execute("INSERT INTO api_tokens (token_hash, username, label, created_at, revoked_at) VALUES (?, ?, ?, ?, NULL)",
               [token_hash(token), user.username, label, utc_now()])
    return token


def resolve_token(db: Database, token: str) -> User:
    """The user a token belongs to; ``AuthenticationError`` if unknown, revoked or the user is disabled."""
    ready(db)
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthenticationError(GENERIC_TOKEN_ERROR)
    rows = db.execute(
        "SELECT u.username, u.role, u.org_code, u.created_at, u.disabled_at "
        "FROM api_tokens t JOIN users u ON u.username = t.username "
        "WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        [token_hash(token)],
    )
    if not rows:
        raise AuthenticationError(GENERIC_TOKEN_ERROR)
    return _user(rows[0])


def revoke_token(db: Database, token: str) -> bool:
    """Revoke one token (by its plain value); True if it was live. Revoked tokens stay for the record."""
    ready(db)
    with atomic(db):
        h = token_hash(token)
        live = db.execute("SELECT 1 FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL", [h])
        if live:
            db.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ?", [utc_now(), h])
    return bool(live)


def revoke_tokens(db: Database, username: str) -> int:
    """Revoke every live token of ``username``; returns how many were revoked."""
    ready(db)
    name = normalise_username(username)
    with atomic(db):
        n = int(db.execute("SELECT COUNT(*) FROM api_tokens WHERE username = ? AND revoked_at IS NULL", [name])[0][0])
        if n:
            db.execute("UPDATE api_tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                       [utc_now(), name])
    return n
