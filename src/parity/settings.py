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

    ``database_url``: ``postgresql://…`` or a DuckDB file path / ``duckdb:///relative`` / ``duckdb:////absolute``
    / ``:memory:`` (``parity.db.url``).
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
    ``trusted_proxies``: addresses of reverse proxies whose ``X-Forwarded-For``/``-Proto`` headers are
    believed (``PARITY_TRUSTED_PROXIES``, comma-separated; default none: the headers are ignored).
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
    trusted_proxies: tuple[str, ...] = ()
    data_dir: str | None = None

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
            trusted_proxies=tuple(p.strip() for p in env.get("PARITY_TRUSTED_PROXIES", "").split(",") if p.strip()),
            data_dir=env.get("PARITY_DATA_DIR") or None,
        )

    def secrets_dir(self) -> Path | None:
        """Where keys that must not live in the database are kept (mode 0600 files): beside a DuckDB
        file, else ``PARITY_DATA_DIR`` (default ``./parity-data``); None for an in-memory database.
        The URL is parsed by ``parity.db.url`` (one parser for every use, issue 12 finding 10)."""
        from parity.db.url import parse_database_url

        return parse_database_url(self.database_url).data_dir(data_dir_from_env(self.data_dir))

    def with_secret_key(self, key_file: Path | None = None) -> Settings:
        """These settings with a session-signing key: ``PARITY_SECRET_KEY`` if set, else the key in
        ``key_file`` (default ``secret.key`` in ``secrets_dir()``), created (random, mode 0600) on first
        use so a single server keeps its sessions across restarts. A key shorter than 32 characters is
        refused."""
        key = self.secret_key
        if key is None:
            if key_file is None:
                folder = self.secrets_dir()
                key = secrets.token_urlsafe(48) if folder is None else read_or_create_secret(folder / SECRET_KEY_FILE)
            else:
                key = read_or_create_secret(key_file)
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"the session secret key must be at least {MIN_SECRET_LENGTH} characters")
        return replace(self, secret_key=key)


def data_dir_from_env(value: str | None = None) -> Path:
    """``PARITY_DATA_DIR`` (or ``value``), default ``./parity-data``."""
    raw = value or os.environ.get("PARITY_DATA_DIR") or ""
    return Path(raw) if raw else DEFAULT_DATA_DIR


def read_or_create_secret(path: Path) -> str:
    """The secret in ``path``, created on first use (random, 64 characters) with mode 0600.

    Created with ``O_EXCL`` so two processes starting together cannot both write one; an existing
    file readable by others is tightened to 0600 (a key readable by every local user is no secret).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


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
