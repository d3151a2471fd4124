"""Organisation levels: which practice-hierarchy columns give a level's code, name and parent.

Shared by every engine so that grouping (including practices missing from a structure) is the
same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def organisation_names(structure: str, level: str,
                       practices: Iterable[Mapping[str, Any]] = ()) -> dict[str, tuple[str, str | None]]:
    """org_code -> (org_name, parent_code) for every organisation at ``level``.

    Names and parents come from the package's organisation files (``parity.orgs``); organisations
    found only in ``practices`` rows (the database's ``practices`` table, e.g. in tests) take
    their name and parent from the first such row.

    Grouping is by code only and names and parents come from here, because a few PCNs span
    several sub-ICBs (``parity.orgs.organisations`` gives such a PCN the sub-ICB holding most of
    its practices); grouping on (code, parent) would split them into two rows.
    """
    from parity.orgs import organisations

    out: dict[str, tuple[str, str | None]] = {}
    if level in LEVEL_COLUMNS:
        code_col, name_col, parent_col = LEVEL_COLUMNS[level]
        for p in practices:
            if p.get("structure", structure) == structure and p.get(code_col) not in out:
                parent = "ENG" if level == "region" else p.get(parent_col)
                out[p[code_col]] = (p.get(name_col), parent)
    frame = organisations(structure, level)
    for code, name, parent in frame[["org_code", "org_name", "parent_code"]].itertuples(index=False):
        out[code] = (name, None if parent is None or parent != parent else parent)
    return out


def level_code(practice: Mapping[str, Any] | None, level: str) -> str:
    """The code of the organisation at ``level`` holding ``practice`` (UNMAPPED if not in the structure)."""
    if level == "england":
        return ENGLAND[0]
    if level not in LEVEL_COLUMNS:
        raise ValueError(f"unknown level {level!r}")
    if practice is None:
        return UNMAPPED
    return practice[LEVEL_COLUMNS[level][0]]


def describe(code: str, level: str, structure: str,
             names: Mapping[str, tuple[str, str | None]]) -> tuple[str, str | None]:
    """(org_name, parent_code) for an aggregate row."""
    if level == "england":
        return ENGLAND[1], None
    if code == UNMAPPED:
        return unmapped_name(structure), None
    return names.get(code, (code, None))
