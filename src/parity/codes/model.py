"""The codelist vocabulary: a ``Code`` (SNOMED CT concept id and term) and a ``Codelist``
(a named cluster of codes with its provenance)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

__all__ = ["KINDS", "Code", "Codelist"]

#: Where a codelist's content comes from:
#: ``pcd``: an NHS Digital Primary Care Domain refset as published on OpenCodelists;
#: ``substitute``: a real published list standing in for a PCD refset with no public file;
#: ``local``: curated by Parity, each code with a note saying where it was found.
KINDS = frozenset({"pcd", "substitute", "local"})


@dataclass(frozen=True)
class Code:
    """One SNOMED CT concept in a codelist."""

    code: int
    term: str
    note: str = ""


@dataclass(frozen=True)
class Codelist:
    """A cluster of SNOMED CT concepts, as used by measure definitions.

    ``refset_id`` is the NHS Digital PCD refset of the cluster of that name, or ``None``. For
    ``kind`` ``"local"`` and ``"substitute"`` the codes are *not* that refset's content; they
    stand in for it until the refset itself is loaded. ``pcd_cluster`` names the official
    cluster a differently named list stands in for (for example ``SMOKDEC_COD`` for
    ``SMOKSTATDEC_COD``).
    """

    cluster: str
    description: str
    refset_id: str | None
    version: str
    source: str
    kind: str
    codes: tuple[Code, ...]
    file: str = ""
    pcd_cluster: str | None = None
    note: str = ""

    @cached_property
    def _ids(self) -> frozenset[int]:
        return frozenset(c.code for c in self.codes)

    def ids(self) -> frozenset[int]:
        """The concept ids of the list."""
        return self._ids

    def __contains__(self, code: object) -> bool:
        return code in self._ids

    def __len__(self) -> int:
        return len(self.codes)

    def term_for(self, code: int) -> str | None:
        """The term this list gives ``code``, or ``None`` when it is not in the list."""
        for c in self.codes:
            if c.code == code:
                return c.term
        return None
