"""Organisation hierarchy (practice → PCN → sub-ICB → ICB → region → England) and QOF MH registers.

Two structure versions, :data:`STRUCTURES`: ``"2022-23"`` (QOF 2022-23 geographies, 42 ICBs) and
``"2026"`` (NHS England mapping of August 2026, 36 ICBs after the mergers). Data ships with the
package (``data/``, provenance in ``data/SOURCES.md``) and is read on first use, then cached.

Practices outside any PCN get a placeholder PCN per sub-ICB (``U-<sub-ICB code>``,
"Unallocated - <sub-ICB code>"): see :mod:`parity.orgs.hierarchy`.
"""

from parity.orgs.hierarchy import (
    ENGLAND,
    LEVELS,
    ORGANISATION_COLUMNS,
    PRACTICE_COLUMNS,
    STRUCTURE_IN_FORCE_FROM,
    STRUCTURE_LABELS,
    STRUCTURES,
    all_practice_codes,
    area_practices,
    check_level,
    check_structure,
    choose_structure,
    is_unallocated_pcn,
    level_columns,
    organisations,
    parent_level,
    practices,
    structure_in_force,
    structure_label,
)
from parity.orgs.registers import REGISTER_YEARS, register_sizes
from parity.orgs.store import practices_arrow, write_practices

__all__ = [
    "ENGLAND",
    "LEVELS",
    "ORGANISATION_COLUMNS",
    "PRACTICE_COLUMNS",
    "REGISTER_YEARS",
    "STRUCTURES",
    "STRUCTURE_IN_FORCE_FROM",
    "STRUCTURE_LABELS",
    "all_practice_codes",
    "area_practices",
    "check_level",
    "check_structure",
    "choose_structure",
    "is_unallocated_pcn",
    "level_columns",
    "organisations",
    "parent_level",
    "practices",
    "practices_arrow",
    "register_sizes",
    "structure_in_force",
    "structure_label",
    "write_practices",
]
