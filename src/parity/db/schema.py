"""The Parity database schema, written once for both DuckDB and PostgreSQL.

Extract tables mirror canonical extract v1 (shared/docs/product.md). SNOMED CT and dm+d
identifiers are stored as BIGINT: SCTIDs are at most 18 digits, so they fit, and integer joins
against the codelist table are much faster than text joins over tens of millions of events.
No primary keys on extract tables: uniqueness is checked by ingest before anything is written,
and index maintenance would slow bulk loads on DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    required: bool


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        cols = ", ".join(
            f"{c.name} {c.sql_type}{' NOT NULL' if c.required else ''}" for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"


def _c(name: str, sql_type: str, required: bool = True) -> Column:
    return Column(name, sql_type, required)


PATIENTS = Table("patients", (
    _c("nhs_number", "VARCHAR(10)"),
    _c("date_of_birth", "DATE"),
    _c("sex", "VARCHAR(8)"),
    _c("ethnicity", "VARCHAR(1)", False),
    _c("lsoa", "VARCHAR(9)", False),
    _c("imd_decile", "SMALLINT", False),
    _c("date_of_death", "DATE", False),
    # For direct care only (README, "Canonical extract"): shown to patient-level roles, never logged.
    _c("given_name", "VARCHAR(100)", False),
    _c("family_name", "VARCHAR(100)", False),
    _c("phone", "VARCHAR(32)", False),
    _c("preferred_contact", "VARCHAR(16)", False),
))
# Optional columns added to an extract table after version 1 was first released: a database made before
# them gets them added (empty) by ``Database.ensure_schema``.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {"patients": ("given_name", "family_name", "phone", "preferred_contact")}
REGISTRATIONS = Table("registrations", (
    _c("nhs_number", "VARCHAR(10)"),
    _c("practice_code", "VARCHAR(10)"),
    _c("start_date", "DATE"),
    _c("end_date", "DATE", False),
))
EVENTS = Table("events", (
    _c("nhs_number", "VARCHAR(10)"),
    _c("date", "DATE"),
    _c("snomed_code", "BIGINT"),
    _c("value", "DOUBLE PRECISION", False),
    _c("unit", "VARCHAR(32)", False),
    _c("recorded_by", "VARCHAR(10)", False),
))
MEDICATIONS = Table("medications", (
    _c("nhs_number", "VARCHAR(10)"),
    _c("date", "DATE"),
    _c("dmd_code", "BIGINT"),
    _c("bnf_code", "VARCHAR(15)", False),
))

# Organisation hierarchy, one row per practice per structure version ("2022-23", "2026").
PRACTICES = Table("practices", (
    _c("structure", "VARCHAR(10)"),
    _c("practice_code", "VARCHAR(10)"),
    _c("practice_name", "VARCHAR(200)"),
    _c("pcn_code", "VARCHAR(10)", False),
    _c("pcn_name", "VARCHAR(200)", False),
    _c("sub_icb_code", "VARCHAR(10)"),
    _c("sub_icb_name", "VARCHAR(200)"),
    _c("icb_code", "VARCHAR(10)"),
    _c("icb_name", "VARCHAR(200)"),
    _c("region_code", "VARCHAR(10)"),
    _c("region_name", "VARCHAR(200)"),
))

# One row per successful load (provenance for reports and the data-quality view).
LOADS = Table("loads", (
    _c("load_id", "VARCHAR(36)"),
    _c("loaded_at", "TIMESTAMP"),
    _c("source", "VARCHAR(1000)"),
    _c("mode", "VARCHAR(10)"),
    _c("patients", "BIGINT"),
    _c("registrations", "BIGINT"),
    _c("events", "BIGINT"),
    _c("medications", "BIGINT"),
    _c("warnings", "BIGINT"),
))

# Codelist releases (parity.codes.store): one row per release file, and one per (release, cluster, concept).
CODELIST_FILES = Table("codelist_files", (
    _c("release", "VARCHAR(64)"),
    _c("file_name", "VARCHAR(255)"),
    _c("sha256", "VARCHAR(64)"),
    _c("form", "VARCHAR(20)"),
    _c("imported_at", "TIMESTAMP"),
    _c("clusters", "INTEGER"),
    _c("codes", "INTEGER"),
))
CODELIST_CODES = Table("codelist_codes", (
    _c("release", "VARCHAR(64)"),
    _c("cluster", "VARCHAR(64)"),
    _c("code", "BIGINT"),
    _c("term", "VARCHAR(1000)", False),
    _c("cluster_description", "VARCHAR(1000)", False),
    _c("refset_id", "VARCHAR(20)", False),
))
# Append-only: the latest row is this database's default release (``parity codes use``).
CODELIST_CHOICE = Table("codelist_choice", (
    _c("chosen_at", "TIMESTAMP"),
    _c("release", "VARCHAR(64)"),
))

EXTRACT_TABLES: dict[str, Table] = {t.name: t for t in (PATIENTS, REGISTRATIONS, EVENTS, MEDICATIONS)}
CODELIST_TABLES: dict[str, Table] = {t.name: t for t in (CODELIST_FILES, CODELIST_CODES, CODELIST_CHOICE)}
TABLES: dict[str, Table] = {**EXTRACT_TABLES, PRACTICES.name: PRACTICES, LOADS.name: LOADS, **CODELIST_TABLES}
