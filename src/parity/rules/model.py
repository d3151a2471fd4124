"""The vocabulary of measure definitions (Parity rules v1, shared/docs/product.md).

A *measure* is a register plus a list of *checks*. Each check is done when any code of its
``done`` clusters is recorded in its window, by any organisation; its ``declined`` clusters never
count as done (they are reported as "declined"). Dates are whole days; a window of N months up
to ``as_of`` runs from ``as_of`` minus N months plus one day, to ``as_of`` inclusive (product.md
"Reporting date"). Month subtraction clamps to the end of the month (2024-02-29 minus 12 months
is 2023-02-28), so that window starts 2023-03-01.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

# The six core elements of the annual SMI physical health check, in the order NHS England's
# SDCS data lists them (clinical-spec.md §1.1). Column names in every output use these ids.
CORE_CHECKS: tuple[str, ...] = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")


def months_before(day: date, months: int) -> date:
    """``day`` minus ``months`` calendar months, clamped to the end of the month."""
    month_index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(month_index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


@dataclass(frozen=True)
class Window:
    """The ``months`` up to and including ``as_of``."""

    months: int = 12

    def start(self, as_of: date) -> date:
        """First day inside the window."""
        return months_before(as_of, self.months) + timedelta(days=1)


@dataclass(frozen=True)
class Register:
    """Who is on the register on ``as_of``.

    Registered at a practice on ``as_of`` (start <= as_of <= end, open end allowed), alive on
    ``as_of`` (no date of death on or before it), and the latest code of ``diagnosis`` or
    ``remission`` on or before ``as_of`` is a diagnosis. A code in both lists counts as
    remission; a diagnosis and a remission on the same day leave the patient on the register.
    """

    diagnosis: tuple[str, ...]
    remission: tuple[str, ...]


@dataclass(frozen=True)
class Criterion:
    """One condition that puts a patient in the higher-risk group for a check's shorter window.

    ``kind`` (the engine implements each kind; the clinical content is in the parameters):

    - ``ever``: any code of ``clusters`` on or before ``as_of``.
    - ``unresolved``: the latest code of ``clusters`` on or before ``as_of`` is later than the
      latest code of ``resolved`` (same day: unresolved), as QOF treats diabetes and CKD.
    - ``latest_is``: the latest code of ``among`` on or before ``as_of`` is in ``clusters``
      (e.g. the latest smoking-status code says current smoker).
    - ``medication``: a prescription whose BNF code starts with ``bnf_prefix`` in the ``months``
      up to ``as_of``.
    - ``value_at_least``: the latest value recorded with a code of ``clusters`` on or before
      ``as_of`` is at least ``threshold``, or ``threshold_by_ethnicity[letter]`` when the
      patient's NHS ethnic category letter is listed there.
    """

    kind: str
    clusters: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    among: tuple[str, ...] = ()
    bnf_prefix: str = ""
    months: int = 0
    threshold: float = 0.0
    threshold_by_ethnicity: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def threshold_for(self, ethnicity: str | None) -> float:
        for letter, value in self.threshold_by_ethnicity:
            if ethnicity == letter:
                return value
        return self.threshold


@dataclass(frozen=True)
class LowerRiskWindow:
    """A longer window for patients who meet none of ``higher_risk_if`` (QOF MH011 lipids)."""

    months: int
    higher_risk_if: tuple[Criterion, ...]


@dataclass(frozen=True)
class Check:
    """One element of the physical health check."""

    id: str
    label: str
    done: tuple[str, ...]
    declined: tuple[str, ...] = ()
    window: Window = field(default_factory=Window)
    lower_risk: LowerRiskWindow | None = None
    note: str = ""

    def clusters(self) -> tuple[str, ...]:
        return self.done + self.declined


@dataclass(frozen=True)
class PersonalisedCareAdjustment:
    """QOF PHCSMIPCA: a patient who did not get every core check is removed from the
    denominator when there is a valid reason for each element not received (a declined or
    unsuitable code for that element in the window), or a code of ``any_of`` (an exception from
    all mental-health indicators) in the window (clinical-spec.md §2.3).
    """

    any_of: tuple[str, ...] = ()
    window: Window = field(default_factory=Window)


@dataclass(frozen=True)
class Measure:
    """A named measure: a register, checks, and which checks make up "all"."""

    id: str
    name: str
    description: str
    source: str
    register: Register
    checks: tuple[Check, ...]
    pca: PersonalisedCareAdjustment | None = None
    choices: tuple[str, ...] = ()

    @property
    def core(self) -> tuple[Check, ...]:
        """The six core checks, in ``CORE_CHECKS`` order."""
        by_id = {c.id: c for c in self.checks}
        return tuple(by_id[c] for c in CORE_CHECKS)

    @property
    def is_bundle(self) -> bool:
        """True when the measure has elements beyond the core six (a local extended bundle)."""
        return len(self.checks) > len(CORE_CHECKS)

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def clusters(self) -> set[str]:
        """Every cluster the measure reads (for loading codelists once)."""
        names = set(self.register.diagnosis) | set(self.register.remission)
        for c in self.checks:
            names |= set(c.clusters())
            if c.lower_risk:
                for crit in c.lower_risk.higher_risk_if:
                    names |= set(crit.clusters) | set(crit.resolved) | set(crit.among)
        if self.pca:
            names |= set(self.pca.any_of)
        return names
