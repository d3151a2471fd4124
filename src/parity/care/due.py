"""When each missing check fell due: the worklist's "overdue since" (M3 overdue lists, M5 recall).

The worklist (``parity.reports.worklist``) knows a missing check only as "not done in the 12 months to the
reporting date"; on its own that makes every missing check due *on* the reporting date. A practice wants
to know how long a check has been overdue, so this module reads, for the patients of one worklist, the
last time each missing check was done *before* its window, and gives the day it fell due from that
(``due_date``: the first reporting date on which that record no longer counts). A check never recorded
before has no due date: it has been due since the patient joined the register.

Patient data stays in frames and dictionaries; nothing here logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from parity.codes import codes_for
from parity.db import Database
from parity.reports.worklist import due_date
from parity.rules.model import Measure

_CHUNK = 500  # NHS numbers per query, well inside PostgreSQL's parameter limit with the codes beside them


@dataclass(frozen=True)
class Overdue:
    """A patient's missing core checks: the earliest day one fell due (None when none was ever recorded)
    and the checks never recorded before their window."""

    since: date | None
    never: tuple[str, ...]


def last_done_before(db: Database, measure: Measure, nhs_numbers: Iterable[str], as_of: date
                     ) -> dict[tuple[str, str], date]:
    """``(nhs_number, check id) -> latest date`` a code of the check's *done* clusters was recorded before the
    check's window on ``as_of``. Codes are integers bound as parameters."""
    people = sorted({str(n) for n in nhs_numbers})
    checks = measure.core
    clusters = codes_for(sorted({name for c in checks for name in c.done}))
    by_check = {c.id: frozenset().union(*(clusters.get(name, frozenset()) for name in c.done)) for c in checks}
    codes = sorted(set().union(*by_check.values())) if by_check else []
    if not people or not codes:
        return {}
    earliest_start = min(c.window.start(as_of) for c in checks)
    out: dict[tuple[str, str], date] = {}
    code_marks = ", ".join("?" * len(codes))
    for i in range(0, len(people), _CHUNK):
        chunk = people[i:i + _CHUNK]
        rows = db.execute(
            "SELECT nhs_number, snomed_code, MAX(date) FROM events "
            f"WHERE nhs_number IN ({', '.join('?' * len(chunk))}) AND snomed_code IN ({code_marks}) AND date < ? "
            "GROUP BY nhs_number, snomed_code", [*chunk, *codes, earliest_start])
        for nhs, code, last in rows:
            for c in checks:
                if int(code) in by_check[c.id] and pd.Timestamp(last).date() < c.window.start(as_of):
                    key = (str(nhs), c.id)
                    day = pd.Timestamp(last).date()
                    if key not in out or day > out[key]:
                        out[key] = day
    return out


def overdue_since(db: Database, measure: Measure, wl: pd.DataFrame, as_of: date) -> dict[str, Overdue]:
    """For each patient of worklist ``wl`` with a missing core check: when it fell due (see the module)."""
    missing = {str(r["nhs_number"]): [c for c in measure.core if r.get(f"{c.id}_status") != "done"]
               for r in wl.to_dict("records")}
    missing = {n: cs for n, cs in missing.items() if cs}
    lasts = last_done_before(db, measure, missing, as_of)
    out = {}
    for nhs, checks in missing.items():
        dues = [due_date(c, lasts[(nhs, c.id)], as_of) for c in checks if (nhs, c.id) in lasts]
        never = tuple(c.id for c in checks if (nhs, c.id) not in lasts)
        out[nhs] = Overdue(min((d for d in dues if d is not None), default=None), never)
    return out
