"""Organisation levels: which practice-hierarchy columns give a level's code, name and parent.

Shared by every engine so that grouping (including practices missing from a structure) is the
same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# level -> (code column, name column, parent code column) in the `practices` table.
LEVEL_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "practice": ("practice_code", "practice_name", "pcn_code"),
    "pcn": ("pcn_code", "pcn_name", "sub_icb_code"),
    "sub_icb": ("sub_icb_code", "sub_icb_name", "icb_code"),
    "icb": ("icb_code", "icb_name", "region_code"),
    "region": ("region_code", "region_name", None),
}
ENGLAND = ("ENG", "England", None)
UNMAPPED = "UNMAPPED"


def unmapped_name(structure: str) -> str:
    return f"Practice not in {structure} structure"


def level_keys(practice: Mapping[str, Any] | None, level: str, structure: str) -> tuple:
    """(org_code, org_name, parent_code) of the organisation at ``level`` holding ``practice``."""
    if level == "england":
        return ENGLAND
    if level not in LEVEL_COLUMNS:
        raise ValueError(f"unknown level {level!r}")
    if practice is None:
        return (UNMAPPED, unmapped_name(structure), None)
    code_col, name_col, parent_col = LEVEL_COLUMNS[level]
    parent = "ENG" if level == "region" else practice.get(parent_col) if parent_col else None
    return (practice.get(code_col), practice.get(name_col), parent)
