"""Syntax checks for SNOMED CT identifiers (SCTIDs).

An SCTID is 6 to 18 digits: an item identifier, a partition identifier (the 2nd and 3rd digits
from the right) and a Verhoeff check digit (the last digit). Partition ``00`` is a concept in
the international release, ``10`` a concept in an extension namespace (for example the UK
edition's ``...1000000...`` and ``...1000237...``); ``01``/``11`` are descriptions and
``02``/``12`` relationships, which never belong in a codelist.

Source: SNOMED CT Technical Implementation Guide, section "SCTID" (check digit: Verhoeff's
dihedral-group algorithm). A valid SCTID is not proof that the concept exists or is active;
that needs a release file.
"""

from __future__ import annotations

__all__ = ["CONCEPT_PARTITIONS", "is_concept_id", "partition", "verhoeff_ok"]

#: Partition identifiers of concept ids (international and extension).
CONCEPT_PARTITIONS = frozenset({"00", "10"})

# Verhoeff tables: multiplication in the dihedral group D5, the position permutation, and inverses.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_ok(digits: str) -> bool:
    """True when the last digit of ``digits`` is its correct Verhoeff check digit."""
    if not digits.isdigit():
        return False
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _D[check][_P[i % 8][int(ch)]]
    return check == 0


def partition(code: int | str) -> str:
    """The partition identifier: the 2nd and 3rd digits from the right."""
    text = str(code)
    return text[-3:-1]


def is_concept_id(code: int | str) -> bool:
    """True for a syntactically valid SNOMED CT *concept* id (length, check digit, partition)."""
    text = str(code)
    return (
        text.isdigit()
        and 6 <= len(text) <= 18
        and not text.startswith("0")
        and partition(text) in CONCEPT_PARTITIONS
        and verhoeff_ok(text)
    )
