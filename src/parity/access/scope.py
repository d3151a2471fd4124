"""What a user may see: row-level access computed from their role and organisation.

- Aggregate views (counts and percentages by organisation) are open to every signed-in role.
- Patient-level views are for practice, PCN, ICB and trust users only: practice users see their own
  practice's patients, PCN users their member practices', ICB users every practice in the ICB (in
  the chosen organisation ``structure``). Programme and admin users see no patient-level data.
- Trust users see their *caseload*, wherever those patients are registered.

Trust caseload is Parity's choice, because canonical extract v1 has no caseload table: a patient is
on a trust's caseload on ``as_of`` if any event was recorded by the trust's ODS code
(``events.recorded_by``) in the ``CASELOAD_MONTHS`` (24) months up to and including ``as_of``
(same window arithmetic as the counting rules: from ``as_of`` minus 24 months plus one day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from parity.access.model import PATIENT_LEVEL_ROLES, Role, User
from parity.db import Database
from parity.rules.model import Window

if TYPE_CHECKING:
    import pandas as pd

CASELOAD_MONTHS = 24


@dataclass(frozen=True)
class Scope:
    """A user's visibility. ``practices`` None means "not by practice" (trust: by ``caseload``)."""

    role: Role
    org_code: str | None
    aggregates: bool
    patient_level: bool
    practices: frozenset[str] | None
    caseload: frozenset[str] | None

    def can_view_practice(self, practice_code: str) -> bool:
        """May the user open this practice's worklist?

        Trust users may open any practice's worklist; ``filter_patients`` then cuts it to their caseload.
        """
        if not self.patient_level:
            return False
        if self.role is Role.trust:
            return True
        return self.practices is not None and practice_code in self.practices

    def can_view_patient(self, nhs_number: str, practice_code: str | None) -> bool:
        """May the user see this patient (registered at ``practice_code``) at patient level?"""
        if not self.patient_level:
            return False
        if self.role is Role.trust:
            return self.caseload is not None and nhs_number in self.caseload
        return self.practices is not None and practice_code in self.practices

    def filter_patients(self, df: pd.DataFrame) -> pd.DataFrame:
        """Only the rows the user may see; ``df`` needs ``nhs_number`` and ``practice_code`` columns."""
        missing = {"nhs_number", "practice_code"} - set(df.columns)
        if missing:
            raise ValueError(f"filter_patients needs columns {sorted(missing)}")
        if not self.patient_level:
            return df.iloc[0:0]
        if self.role is Role.trust:
            keep = df["nhs_number"].isin(self.caseload or frozenset())
        else:
            keep = df["practice_code"].isin(self.practices or frozenset())
        return df[keep]

    def home_org(self) -> tuple[str, str] | None:
        """The ``(level, code)`` to land a practice, PCN or ICB user on; None for other roles."""
        if self.role in (Role.practice, Role.pcn, Role.icb) and self.org_code:
            return (self.role.value, self.org_code)
        return None


def scope_for(db: Database, user: User, structure: str, as_of: date) -> Scope:
    """The ``Scope`` of ``user`` in organisation ``structure`` ("2022-23" or "2026") on ``as_of``.

    ``as_of`` matters only for trust caseloads. Disabled users get no access at all.
    """
    role, org = user.role, user.org_code
    patient_level = role in PATIENT_LEVEL_ROLES and org is not None and not user.disabled
    practices: frozenset[str] | None = None
    caseload: frozenset[str] | None = None
    if role is Role.practice:
        practices = frozenset({org}) if org else frozenset()
    elif role in (Role.pcn, Role.icb):
        # Column name from a fixed choice, never from input.
        column = "pcn_code" if role is Role.pcn else "icb_code"
        rows = db.execute(f"SELECT DISTINCT practice_code FROM practices WHERE structure = ? AND {column} = ?",
                          [structure, org])
        practices = frozenset(str(r[0]) for r in rows)
    elif role is Role.trust:
        caseload = trust_caseload(db, org, as_of) if patient_level and org else frozenset()
    elif role not in (Role.programme, Role.admin):  # pragma: no cover - Role is closed
        raise ValueError(f"unknown role {role}")
    return Scope(role=role, org_code=org, aggregates=not user.disabled, patient_level=patient_level,
                 practices=practices, caseload=caseload)


def trust_caseload(db: Database, trust_code: str, as_of: date) -> frozenset[str]:
    """NHS numbers with any event recorded by ``trust_code`` in the ``CASELOAD_MONTHS`` up to ``as_of``."""
    start = Window(CASELOAD_MONTHS).start(as_of)
    rows = db.execute("SELECT DISTINCT nhs_number FROM events WHERE recorded_by = ? AND date >= ? AND date <= ?",
                      [trust_code, start, as_of])
    return frozenset(str(r[0]) for r in rows)


#: Roles that may record area-level programme state: initiatives and assessments (product.md M7, M10).
AREA_EDITORS = frozenset({Role.programme, Role.icb, Role.admin})
# Levels inside an ICB, and the practices column that places an area of that level in an ICB.
_INSIDE_ICB = {"practice": "practice_code", "pcn": "pcn_code", "sub_icb": "sub_icb_code"}


def may_edit_area(user: User, area_level: str | None = None, area_code: str | None = None,
                  db: Database | None = None) -> bool:
    """May ``user`` record an initiative or assessment for this area?

    The programme team and administrators may record for any area. An ICB user may record for its
    own ICB, for a service (a commissioned service is not an organisation Parity can place), and,
    given ``db``, for a sub-ICB, PCN or practice inside its ICB (in any organisation structure);
    never for another ICB, a region, a trust, or a practice elsewhere. Nobody else may record.
    ``area_level``/``area_code`` None asks "for some area" (whether to show the form). One rule for
    every writer of area state (issue 12 finding 9: assessments lacked the check initiatives had).
    """
    if user.disabled or user.role not in AREA_EDITORS:
        return False
    if user.role is not Role.icb or area_code is None:
        return True
    if not user.org_code:
        return False
    level = (area_level or "icb").strip().lower()
    code = area_code.strip().upper()
    if level == "icb":
        return code == user.org_code
    if level == "service":
        return True
    column = _INSIDE_ICB.get(level)
    if column is None or db is None:
        return False
    return bool(db.execute(f"SELECT 1 FROM practices WHERE icb_code = ? AND {column} = ? LIMIT 1",
                           [user.org_code, code]))
