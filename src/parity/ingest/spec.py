"""Canonical extract, version 1: which files an extract holds and what each column contains.

Version 1 includes the optional direct-care columns of ``patients`` (``given_name``, ``family_name``, ``phone``,
``preferred_contact``; product.md): checked as bounded text like any other column, and, like every value,
never repeated in an error message.

The table layout comes from ``parity.db.schema`` (one source of truth for columns, types and which
columns are required). This module adds what ingest needs on top: the *kind* of value each column
holds, which decides how it is checked and converted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parity.db.schema import EXTRACT_TABLES

#: Files of an extract, in the order they are read, checked and reported.
TABLE_ORDER: tuple[str, ...] = ("patients", "registrations", "events", "medications")
#: Tables whose file must be present.
REQUIRED_TABLES: frozenset[str] = frozenset({"patients", "registrations", "events"})
#: File formats, by file-name suffix.
FORMATS: tuple[str, ...] = ("csv", "parquet")

SEX_VALUES: tuple[str, ...] = ("male", "female", "intersex", "unknown")
#: NHS ethnic category codes (NHS Data Dictionary "ethnic category", 2001 census groups A-S, Z = not stated).
ETHNICITY_PATTERN = "[A-HJ-NPRSZ]"

# Kinds of column. Each kind has one set of checks and one target type (see checks.py).
NHS = "nhs"              # NHS number: 10 digits, modulus-11 check digit
DATE = "date"            # YYYY-MM-DD, a real calendar date
SEX = "sex"              # one of SEX_VALUES
ETHNICITY = "ethnicity"  # one NHS ethnic category letter
IMD = "imd"              # IMD decile, whole number 1-10
SNOMED = "snomed"        # SNOMED CT concept id: 6-18 digits
DMD = "dmd"              # dm+d id (also a SNOMED CT id): 6-18 digits
NUMBER = "number"        # a finite decimal number
ODS = "ods"              # an ODS organisation code (letters and digits)
PRACTICE = "practice"    # an ODS code that must be a known GP practice
TEXT = "text"            # free text, bounded by the column's VARCHAR length

_KINDS: dict[tuple[str, str], str] = {
    ("patients", "nhs_number"): NHS,
    ("patients", "date_of_birth"): DATE,
    ("patients", "sex"): SEX,
    ("patients", "ethnicity"): ETHNICITY,
    ("patients", "lsoa"): TEXT,
    ("patients", "imd_decile"): IMD,
    ("patients", "date_of_death"): DATE,
    ("patients", "given_name"): TEXT,
    ("patients", "family_name"): TEXT,
    ("patients", "phone"): TEXT,
    ("patients", "preferred_contact"): TEXT,
    ("registrations", "nhs_number"): NHS,
    ("registrations", "practice_code"): PRACTICE,
    ("registrations", "start_date"): DATE,
    ("registrations", "end_date"): DATE,
    ("events", "nhs_number"): NHS,
    ("events", "date"): DATE,
    ("events", "snomed_code"): SNOMED,
    ("events", "value"): NUMBER,
    ("events", "unit"): TEXT,
    ("events", "recorded_by"): ODS,
    ("medications", "nhs_number"): NHS,
    ("medications", "date"): DATE,
    ("medications", "dmd_code"): DMD,
    ("medications", "bnf_code"): TEXT,
}


@dataclass(frozen=True)
class Field:
    """One column of an extract file."""

    name: str
    kind: str
    required: bool
    sql_type: str          # the database column type (schema.py)
    max_length: int | None  # VARCHAR(n) bound, None for other types


@dataclass(frozen=True)
class TableSpec:
    """One file of an extract."""

    name: str
    fields: tuple[Field, ...]

    @property
    def required_file(self) -> bool:
        return self.name in REQUIRED_TABLES

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _max_length(sql_type: str) -> int | None:
    m = re.fullmatch(r"VARCHAR\((\d+)\)", sql_type)
    return int(m.group(1)) if m else None


def _build() -> dict[str, TableSpec]:
    specs = {}
    for name in TABLE_ORDER:
        table = EXTRACT_TABLES[name]
        fields = tuple(
            Field(c.name, _KINDS[(name, c.name)], c.required, c.sql_type, _max_length(c.sql_type))
            for c in table.columns
        )
        specs[name] = TableSpec(name, fields)
    return specs


#: The extract tables, in TABLE_ORDER.
SPECS: dict[str, TableSpec] = _build()
