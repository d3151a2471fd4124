"""Settings, built once by the CLI (or app factory) and passed down. No import-time side effects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("parity-data")
DEFAULT_DUCKDB_FILE = "parity.duckdb"


@dataclass(frozen=True)
class Settings:
    """Runtime settings.

    ``database_url``: ``postgresql://…`` or a DuckDB path / ``duckdb:///path`` / ``duckdb://:memory:``.
    ``suppress_below``/``round_to``: disclosure control for published outputs (counts 1..suppress_below-1
    are suppressed, the rest rounded to the nearest ``round_to``).
    """

    database_url: str
    suppress_below: int = 8
    round_to: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, database: str | None = None) -> Settings:
        env = os.environ if environ is None else environ
        url = database or env.get("PARITY_DATABASE_URL") or str(DEFAULT_DATA_DIR / DEFAULT_DUCKDB_FILE)
        return cls(
            database_url=url,
            suppress_below=int(env.get("PARITY_SUPPRESS_BELOW", "8")),
            round_to=int(env.get("PARITY_ROUND_TO", "5")),
        )
