"""Database connections (DuckDB file by default, PostgreSQL by URL) and the Parity schema."""

from parity.db.connection import Database, open_database
from parity.db.schema import EXTRACT_TABLES, TABLES

__all__ = ["Database", "open_database", "TABLES", "EXTRACT_TABLES"]
