"""Settings, built once by the CLI (or app factory) and passed down. No import-time side effects."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from parity.errors import ConfigurationError

DEFAULT_DATA_DIR = Path("parity-data")
DEFAULT_DUCKDB_FILE = "parity.duckdb"
SECRET_KEY_FILE = "secret.key"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """Runtime settings.

    ``database_url``: ``postgresql://…`` or a DuckDB path / ``duckdb:///path`` / ``duckdb://:memory:``.
    ``suppress_below``/``round_to``: disclosure control for published outputs (counts 1..suppress_below-1
    are suppressed, the rest rounded to the nearest ``round_to``).
    ``secret_key``: signs session cookies (``PARITY_SECRET_KEY``; see ``with_secret_key``).
    ``session_hours``: how long a signed-in browser session lasts.
    ``cookie_secure``: send the session cookie over HTTPS only (``PARITY_COOKIE_SECURE=1`` behind TLS).
    ``structure``: organisation structure for dashboards (default: the one covering most practices).
    ``today``: pin today's date (``PARITY_TODAY``, for demos and tests); None means the real date.
    ``synthetic``: show the "synthetic data only" banner (``PARITY_SYNTHETIC=1``; the demo sets it).
    ``mesh_config``: path of the MESH configuration file (``PARITY_MESH_CONFIG``); None: no MESH.
    ``mesh_poll_seconds``: how often ``parity serve``'s MESH worker sends and polls (``PARITY_MESH_POLL_SECONDS``).
    """

    database_url: str
    suppress_below: int = 8
    round_to: int = 5
    secret_key: str | None = None
    session_hours: int = 8
    cookie_secure: bool = False
    structure: str | None = None
    synthetic: bool = False
    today: date | None = None
    mesh_config: str | None = None
    mesh_poll_seconds: int = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, database: str | None = None) -> Settings:
        env = os.environ if environ is None else environ
        url = database or env.get("PARITY_DATABASE_URL") or str(DEFAULT_DATA_DIR / DEFAULT_DUCKDB_FILE)
        return cls(
            database_url=url,
            suppress_below=_int(env, "PARITY_SUPPRESS_BELOW", 8),
            round_to=_int(env, "PARITY_ROUND_TO", 5),
            secret_key=env.get("PARITY_SECRET_KEY") or None,
            session_hours=_int(env, "PARITY_SESSION_HOURS", 8),
            cookie_secure=env.get("PARITY_COOKIE_SECURE", "") in ("1", "true", "yes"),
            structure=env.get("PARITY_STRUCTURE") or None,
            synthetic=env.get("PARITY_SYNTHETIC", "") in ("1", "true", "yes"),
            today=_day(env, "PARITY_TODAY"),
            mesh_config=env.get("PARITY_MESH_CONFIG") or None,
            mesh_poll_seconds=_int(env, "PARITY_MESH_POLL_SECONDS", 60),
        )

    def with_secret_key(self, key_file: Path) -> Settings:
        """These settings with a session-signing key: ``PARITY_SECRET_KEY`` if set, else the key in
        ``key_file``, created (random, mode 0600) on first use so a single server keeps its sessions
        across restarts. A key shorter than 32 characters is refused."""
        key = self.secret_key
        if key is None:
            if key_file.exists():
                key = key_file.read_text().strip()
            else:
                key_file.parent.mkdir(parents=True, exist_ok=True)
                key = secrets.token_urlsafe(48)
                key_file.touch(mode=0o600)
                key_file.write_text(key)
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"the session secret key must be at least {MIN_SECRET_LENGTH} characters")
        return replace(self, secret_key=key)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None


def _day(env: Mapping[str, str], name: str) -> date | None:
    raw = env.get(name)
    if not raw:
        return None
    from parity.dates import parse_date

    return parse_date(raw, name)
