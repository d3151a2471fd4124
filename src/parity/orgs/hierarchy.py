"""The organisation hierarchy: practice → PCN → sub-ICB → ICB → region → England, per structure.

Two structure versions ship with Parity (see ``data/SOURCES.md``):

* ``"2022-23"``: QOF 2022-23 geography mapping, 42 ICBs (the six South East ICBs of the roadmap);
* ``"2026"``: NHS England GP registration mapping extracted 1 August 2026, 36 ICBs after the 2026
  ICB mergers.

Practices outside any PCN (code ``U`` / "Unallocated" in both source files) get one placeholder
PCN per sub-ICB: code ``"U-" + sub_icb_code`` (e.g. ``U-91Q``, never a real ODS code, which has no
hyphen) and name ``"Unallocated - " + sub_icb_code``. So ``pcn_code`` and ``pcn_name`` are never
empty and every practice has a full chain to England.

Every practice row carries its own sub-ICB, ICB and region. A few real PCNs have practices in two
or three sub-ICBs (10 PCNs in 2022-23, 11 in 2026, some across ICBs); :func:`organisations` gives
such a PCN the sub-ICB holding most of its practices as its single parent.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date

import pandas as pd

from parity.errors import ConfigurationError
from parity.orgs import _data
from parity.orgs._build import ENGLAND_CODE, UNALLOCATED_PCN_PREFIX

STRUCTURES: tuple[str, ...] = ("2022-23", "2026")
"""Structure versions, oldest first."""

STRUCTURE_IN_FORCE_FROM: dict[str, date] = {
    # ICBs were established on 1 July 2022 with the ICS footprints and codes of 2021, so the 2022-23
    # structure is also the one that reproduces 2021 ICS board figures (issue 11): it is the nearest
    # shipped structure for any earlier date too.
    "2022-23": date(2022, 7, 1),
    # The ICB mergers of 2026 took effect at the start of the 2026-27 financial year (the mapping file
    # shipped is NHS England's of 1 August 2026, after them).
    "2026": date(2026, 4, 1),
}
"""The first day each structure was in force (``structure_in_force``)."""

STRUCTURE_LABELS: dict[str, str] = {
    "2022-23": "2022-23 structure (42 ICBs, the 2021 ICS footprints)",
    "2026": "2026 structure (36 ICBs after the April 2026 mergers)",
}
"""How a structure is named on every output."""

LEVELS: tuple[str, ...] = ("practice", "pcn", "sub_icb", "icb", "region", "england")
"""Organisation levels, smallest first."""

PRACTICE_COLUMNS: tuple[str, ...] = (
    "structure", "practice_code", "practice_name", "pcn_code", "pcn_name", "sub_icb_code",
    "sub_icb_name", "icb_code", "icb_name", "region_code", "region_name",
)
"""Columns of :func:`practices`, exactly those of the database ``practices`` table."""

ORGANISATION_COLUMNS: tuple[str, ...] = ("org_code", "org_name", "parent_code")

ENGLAND: tuple[str, str] = (ENGLAND_CODE, "England")
"""(org_code, org_name) of the top of every hierarchy."""


def check_structure(structure: str) -> str:
    """Return ``structure`` if it is known, else raise :class:`~parity.errors.ConfigurationError`."""
    if structure not in STRUCTURES:
        raise ConfigurationError(
            f"unknown organisation structure {structure!r}; choose one of {', '.join(STRUCTURES)}"
        )
    return structure


def structure_in_force(as_of: date) -> str:
    """The structure in force on ``as_of``: the newest one that started on or before it, or the oldest
    shipped one for earlier dates (the nearest; product.md M1 "the one in force on the reporting date")."""
    current = STRUCTURES[0]
    for name in STRUCTURES:
        if STRUCTURE_IN_FORCE_FROM[name] <= as_of:
            current = name
    return current


def structure_label(structure: str) -> str:
    """The structure's name for people, e.g. "2026 structure (36 ICBs after the April 2026 mergers)"."""
    return STRUCTURE_LABELS.get(structure, f"{structure} structure")


def check_level(level: str) -> str:
    """Return ``level`` if it is known, else raise :class:`~parity.errors.ConfigurationError`."""
    if level not in LEVELS:
        raise ConfigurationError(f"unknown organisation level {level!r}; choose one of {', '.join(LEVELS)}")
    return level


def is_unallocated_pcn(pcn_code: str | None) -> bool:
    """True for the placeholder PCN codes given to practices outside any PCN (``U-<sub-ICB>``)."""
    return bool(pcn_code) and str(pcn_code).startswith(UNALLOCATED_PCN_PREFIX)


def level_columns(level: str) -> tuple[str | None, str | None]:
    """(code column, name column) of ``level`` in the ``practices`` table; ``(None, None)`` for England."""
    check_level(level)
    if level == "england":
        return (None, None)
    return (f"{level}_code", f"{level}_name")


def parent_level(level: str) -> str | None:
    """The level above ``level`` (practice → pcn → … → region → england); ``None`` for England."""
    index = LEVELS.index(check_level(level))
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def _org_rows(structure: str, level: str) -> pd.DataFrame:
    rows = _data.organisation_rows()
    return rows[(rows["structure"] == structure) & (rows["level"] == level)]


@functools.cache
def _practices(structure: str) -> pd.DataFrame:
    rows = _data.practice_rows()
    frame = rows[rows["structure"] == structure].reset_index(drop=True)

    def names(level: str, parent: str | None) -> pd.DataFrame:
        orgs = _org_rows(structure, level)
        out = pd.DataFrame({f"{level}_code": orgs["org_code"], f"{level}_name": orgs["org_name"]})
        if parent:
            out[f"{parent}_code"] = orgs["parent_code"]
        return out

    frame = frame.merge(names("pcn", None), on="pcn_code", how="left", validate="many_to_one")
    frame = frame.merge(names("sub_icb", "icb"), on="sub_icb_code", how="left", validate="many_to_one")
    frame = frame.merge(names("icb", "region"), on="icb_code", how="left", validate="many_to_one")
    frame = frame.merge(names("region", None), on="region_code", how="left", validate="many_to_one")
    return frame[list(PRACTICE_COLUMNS)].sort_values("practice_code", ignore_index=True)


def practices(structure: str) -> pd.DataFrame:
    """One row per practice of ``structure``, with its whole chain (the ``practices`` table shape).

    Columns: :data:`PRACTICE_COLUMNS`, all strings, none empty (see the module docstring for the
    placeholder PCN of practices outside any PCN). Sorted by ``practice_code``. Unknown
    ``structure``: :class:`~parity.errors.ConfigurationError`.
    """
    return _practices(check_structure(structure)).copy()


def all_practice_codes() -> frozenset[str]:
    """Every practice code in any structure."""
    return frozenset(_data.practice_rows()["practice_code"])


@functools.cache
def _codes(structure: str) -> frozenset[str]:
    rows = _data.practice_rows()
    return frozenset(rows.loc[rows["structure"] == structure, "practice_code"])


def choose_structure(practice_codes: Iterable[str]) -> str:
    """The structure that contains most of ``practice_codes``; ties (and no codes) give the newest."""
    codes = {str(c).strip().upper() for c in practice_codes}
    best = max(range(len(STRUCTURES)), key=lambda i: (len(codes & _codes(STRUCTURES[i])), i))
    return STRUCTURES[best]


def organisations(structure: str, level: str) -> pd.DataFrame:
    """Distinct organisations at ``level`` in ``structure``: ``org_code``, ``org_name``, ``parent_code``.

    ``parent_code`` is the code at :func:`parent_level` (``"ENG"`` for regions, missing for England).
    For practices it is the PCN; for a PCN spanning several sub-ICBs it is the sub-ICB holding most
    of its practices. Sorted by ``org_code``.
    """
    check_structure(structure)
    check_level(level)
    if level == "practice":
        frame = _practices(structure)
        out = pd.DataFrame({"org_code": frame["practice_code"], "org_name": frame["practice_name"],
                            "parent_code": frame["pcn_code"]})
    elif level == "england":
        out = pd.DataFrame({"org_code": [ENGLAND[0]], "org_name": [ENGLAND[1]],
                            "parent_code": pd.Series([None], dtype="str")})
    else:
        rows = _org_rows(structure, level)
        out = pd.DataFrame({"org_code": rows["org_code"], "org_name": rows["org_name"],
                            "parent_code": rows["parent_code"]})
    return out.sort_values("org_code", ignore_index=True)


def area_practices(structure: str, *, region: str | None = None, icb: str | None = None,
                   sub_icb: str | None = None, pcn: str | None = None,
                   practice: str | None = None) -> pd.DataFrame:
    """The :func:`practices` rows of ``structure`` inside every area given (filters combine with AND).

    Codes are ODS codes (case and surrounding spaces ignored), e.g. ``region="Y59"``,
    ``icb="QKS"``. A code that names no organisation of that level in ``structure`` raises
    :class:`~parity.errors.ConfigurationError`; known codes that do not overlap give no rows.
    With no filter, every practice of ``structure``.
    """
    frame = _practices(check_structure(structure))
    mask = pd.Series(True, index=frame.index)
    for level, code in (("region", region), ("icb", icb), ("sub_icb", sub_icb), ("pcn", pcn),
                        ("practice", practice)):
        if code is None:
            continue
        wanted = str(code).strip().upper()
        column = frame[f"{level}_code"]
        if not (column == wanted).any():
            label = level.replace("_", "-")
            raise ConfigurationError(f"no {label} with code {wanted!r} in the {structure} structure")
        mask &= column == wanted
    return frame[mask].reset_index(drop=True)
