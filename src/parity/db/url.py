"""Database URLs, parsed once (issue 12 finding 10) for everything that needs their parts.

DuckDB URLs follow the SQLAlchemy convention (also duckdb_engine's): ``duckdb:///rel/x.duckdb`` is
relative to the working directory and ``duckdb:////abs/x.duckdb`` absolute; a plain file path and
``:memory:`` work too. PostgreSQL URLs are libpq URLs (``postgresql://user@host:port/db``), with the
schema in ``options=-csearch_path%3Dschema`` when Parity should use one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parity.errors import ConfigurationError, DatabaseError

POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
DUCKDB_SCHEME = "duckdb://"
MEMORY = ":memory:"


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL.

    ``kind`` is ``"duckdb"`` or ``"postgres"``. For DuckDB, ``path`` is the file (or ``:memory:``);
    for PostgreSQL, ``conninfo`` is the libpq URL and ``schema`` the ``search_path`` schema, if any.
    """

    raw: str
    kind: str
    path: str | None = None
    conninfo: str | None = None
    schema: str | None = None

    @property
    def in_memory(self) -> bool:
        return self.kind == "duckdb" and self.path == MEMORY

    @property
    def file(self) -> Path | None:
        """The DuckDB file, or None (PostgreSQL or in-memory)."""
        return Path(self.path) if self.kind == "duckdb" and self.path and self.path != MEMORY else None

    def data_dir(self, default: Path) -> Path | None:
        """Where secrets that must not live in the database go: beside a DuckDB file, else ``default``
        (None for an in-memory database, whose secrets live only as long as the process)."""
        if self.in_memory:
            return None
        return self.file.parent if self.file is not None else default


def parse_database_url(url: str) -> DatabaseURL:
    """Parse ``postgresql://…``, ``duckdb:///path``, ``duckdb:////abs/path``, ``:memory:`` or a file path.

    Raises ``ConfigurationError`` for another scheme and ``DatabaseError`` for a malformed
    PostgreSQL URL (the message never repeats the URL: it may hold a password).
    """
    text = str(url).strip()
    if text.startswith(POSTGRES_SCHEMES):
        from psycopg.conninfo import conninfo_to_dict

        conninfo = "postgresql://" + text.split("://", 1)[1]
        try:
            info = conninfo_to_dict(conninfo)
        except Exception as exc:
            raise DatabaseError("malformed PostgreSQL URL") from exc
        schema = None
        options = str(info.get("options") or "")
        if "search_path=" in options:
            schema = options.split("search_path=", 1)[1].split()[0].split(",")[0].strip('"') or None
        return DatabaseURL(text, "postgres", conninfo=conninfo, schema=schema)
    if text.startswith(DUCKDB_SCHEME):
        rest = text[len(DUCKDB_SCHEME):].split("?", 1)[0]
        if rest in ("", MEMORY, "/" + MEMORY):
            return DatabaseURL(text, "duckdb", path=MEMORY)
        # After "duckdb://" comes an (empty) host, then "/" and the path: "duckdb:///x" -> "x",
        # "duckdb:////abs/x" -> "/abs/x". A host-like form ("duckdb://x.duckdb") is read as a path.
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ConfigurationError("a duckdb:// URL needs a file path, e.g. duckdb:///parity-data/parity.duckdb")
        return DatabaseURL(text, "duckdb", path=path)
    if "://" in text:
        raise ConfigurationError("unsupported database URL: use postgresql://…, duckdb:///path or a file path")
    return DatabaseURL(text, "duckdb", path=text or MEMORY)
