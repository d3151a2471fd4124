"""The practice worklist: who is missing which check, who is one or two checks short, and when
each check falls due again (product.md M3 "near-miss and overdue patient lists", M5 "worklists
ranked by expected gain").

Pure functions over the engine's per-patient status frame (``parity.engine.base``) and a
``patients`` frame; nothing here knows about the web app or the database.

Output of ``worklist`` (one row per patient in the denominator):

====================  ===============================================================================
``nhs_number``        str
``practice_code``     str, the practice registered at on ``as_of``
``age``               Int64 (nullable), whole years on ``as_of``; NA when the patient has no row in
                      ``patients``
``sex``               str or None
``checks_done``       int, core checks done (of six)
``missing``           str, comma-separated labels of the core checks not done (declined ones too),
                      in measure order; "" when none
``declined``          str, comma-separated labels of the core checks whose status is ``declined``
``category``          ``complete`` (6/6), ``near_miss`` (4 or 5 of 6), ``incomplete`` (0-3)
``<check>_status``    ``done`` / ``declined`` / ``missing``, one triple per check of the measure
``<check>_date``      ``datetime.date`` or None: latest qualifying date in the window
``<check>_due``       ``datetime.date`` or None: the day the check falls due again (``due_date``);
                      None when it is not done, i.e. it is due now
``next_due``          ``datetime.date``: earliest ``<check>_due`` of the core checks, or ``as_of``
                      when a core check is missing
``due_status``        ``overdue`` (a core check is not done), ``due_soon`` (all done and
                      ``next_due`` within ``DUE_SOON_DAYS`` of ``as_of``, inclusive), ``up_to_date``
====================  ===============================================================================

Default order ("priority"): patients who are not complete first, most checks done first (5/6,
then 4/6, ... : one check turns a near-miss into an all-six patient, the most gain for the measure),
then complete patients, soonest due first; ties by NHS number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from parity.errors import ConfigurationError
from parity.rules.model import Check, Measure, Window, months_before

DUE_SOON_DAYS = 30
"""A patient with every core check done is "due soon" when a check falls due within this many days."""

NEAR_MISS_MIN = 4
"""Near-miss: 4 or 5 of the six core checks (product.md "near-misses (4/6, 5/6)")."""

CATEGORIES: tuple[str, ...] = ("complete", "near_miss", "incomplete")
DUE_STATUSES: tuple[str, ...] = ("overdue", "due_soon", "up_to_date")

SORT_COLUMNS: tuple[str, ...] = (
    "priority", "nhs_number", "practice_code", "age", "sex", "checks_done", "category", "next_due", "due_status",
)
"""Allowed ``WorklistFilter.sort`` values: ``priority`` (the default order, see the module docstring)
or one of these output columns (ties then by NHS number)."""

_SEARCH_MAX = 10  # an NHS number has 10 digits


def months_after(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped to the end of the month, the inverse step of
    ``parity.rules.model.months_before`` (same arithmetic: 2024-02-29 plus 12 months is 2025-02-28)."""
    return months_before(day, -months)


def age_on(date_of_birth: date, day: date) -> int:
    """Age in whole years on ``day`` (a birthday on 29 February is reached on 1 March in other years)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def due_date(check: Check, last_done: date | None, as_of: date) -> date | None:
    """The day ``check``, last done on ``last_done``, falls due again; None when it is not done.

    This is the first reporting date on which ``last_done`` is no longer inside the check's window
    (``Window.start``, the same month arithmetic as the counting rules): a check done on 2024-04-15
    with a 12-month window counts up to the report of 2025-04-14 and is due on 2025-04-15. Repeating
    it on or before the due date keeps the patient counted without a gap.

    Lower-risk lipids (``qof-mh021``, QOF MH011: 24 months for lower-risk patients): the status frame
    does not say who is lower risk, so the check's default window (12 months) is used, the
    conservative reminder. The one exception is a check that is done although its date is older than
    the default window: the engine can only have counted it under the lower-risk window, so that
    window gives the due date (otherwise the due date would lie in the past of a check that is done).
    """
    if last_done is None:
        return None
    months = check.window.months
    if check.lower_risk is not None and last_done < check.window.start(as_of):
        months = check.lower_risk.months
    window = Window(months)
    due = months_after(last_done, months)
    # Month-end clamping can put the first uncovered day one or two days either side of the plain
    # month step (2024-02-29 + 12 months = 2025-02-28, yet the window of 2025-02-28 still starts on
    # 2024-02-29): step to the exact first day whose window starts after ``last_done``.
    one_day = timedelta(days=1)
    while window.start(due) <= last_done:
        due += one_day
    while window.start(due - one_day) > last_done:
        due -= one_day
    return due


def worklist(status: pd.DataFrame, patients: pd.DataFrame, measure: Measure, as_of: date) -> pd.DataFrame:
    """One row per patient in the denominator, with what is missing and when checks fall due.

    ``status`` is a per-patient status frame for ``measure`` on ``as_of`` (``Engine.patient_status``);
    ``patients`` has at least ``nhs_number, date_of_birth, sex`` (extra columns are ignored; patients
    without a row get age NA and sex None). Columns and order: module docstring.
    """
    core = measure.core
    df = status.loc[status["in_denominator"].fillna(False).astype(bool)].copy()
    df["nhs_number"] = df["nhs_number"].astype(str).astype(object)

    people = patients.loc[:, ["nhs_number", "date_of_birth", "sex"]].copy()
    people["nhs_number"] = people["nhs_number"].astype(str).astype(object)
    people = people.drop_duplicates("nhs_number")
    df = df.merge(people, on="nhs_number", how="left", validate="many_to_one")

    born = pd.to_datetime(df["date_of_birth"], errors="coerce")
    before_birthday = (born.dt.month > as_of.month) | ((born.dt.month == as_of.month) & (born.dt.day > as_of.day))
    df["age"] = (as_of.year - born.dt.year - before_birthday.astype("int64")).astype("Int64")
    df["sex"] = df["sex"].astype(object).where(df["sex"].notna(), None)

    statuses = {c.id: df[f"{c.id}_status"].astype(object) for c in measure.checks}
    for c in measure.checks:
        df[f"{c.id}_due"] = _due_column(c, df[f"{c.id}_date"], as_of)

    df["checks_done"] = sum((statuses[c.id] == "done").astype("int64") for c in core)
    df["checks_done"] = df["checks_done"].astype("int64")
    df["missing"] = _labels(df.index, ((c.label, statuses[c.id] != "done") for c in core))
    df["declined"] = _labels(df.index, ((c.label, statuses[c.id] == "declined") for c in core))
    df["category"] = [_category(n, len(core)) for n in df["checks_done"]]

    any_missing = df["checks_done"] < len(core)
    next_due = []
    for dues in zip(*(df[f"{c.id}_due"] for c in core), strict=True):
        known = [d for d in dues if d is not None]
        next_due.append(min(known) if len(known) == len(core) else as_of)
    df["next_due"] = pd.Series(next_due, index=df.index, dtype=object)
    soon = as_of + timedelta(days=DUE_SOON_DAYS)
    df["due_status"] = [
        "overdue" if miss else ("due_soon" if due <= soon else "up_to_date")
        for miss, due in zip(any_missing, df["next_due"], strict=True)
    ]

    cols = ["nhs_number", "practice_code", "age", "sex", "checks_done", "missing", "declined", "category"]
    for c in measure.checks:
        cols += [f"{c.id}_status", f"{c.id}_date", f"{c.id}_due"]
    cols += ["next_due", "due_status"]
    out = df[cols]
    return out.iloc[_priority_order(out)].reset_index(drop=True)


@dataclass(frozen=True)
class WorklistFilter:
    """What a user asked to see of a worklist (query parameters of the worklist page and export).

    ``category``: one of ``CATEGORIES``; ``due_status``: one of ``DUE_STATUSES``; ``missing_check``: a
    check id, keeps patients for whom that check is not done; ``declined_only``: keeps patients with
    a declined core check; ``search``: the start of an NHS number (digits, spaces ignored);
    ``sort``: one of ``SORT_COLUMNS``; ``descending`` reverses it. None means "no filter".
    """

    category: str | None = None
    due_status: str | None = None
    missing_check: str | None = None
    declined_only: bool = False
    search: str | None = None
    sort: str = "priority"
    descending: bool = False


def apply_filter(df: pd.DataFrame, f: WorklistFilter) -> pd.DataFrame:
    """The rows of worklist ``df`` that ``f`` keeps, in the order ``f`` asks for.

    Raises ``ConfigurationError`` naming the bad parameter and the allowed values. Messages never
    repeat what was given (a search term may be an NHS number).
    """
    checks = [col[: -len("_status")] for col in df.columns if col.endswith("_status") and col != "due_status"]
    if f.category is not None and f.category not in CATEGORIES:
        raise ConfigurationError(f"category must be one of: {', '.join(CATEGORIES)}")
    if f.due_status is not None and f.due_status not in DUE_STATUSES:
        raise ConfigurationError(f"due_status must be one of: {', '.join(DUE_STATUSES)}")
    if f.missing_check is not None and f.missing_check not in checks:
        raise ConfigurationError(f"missing_check must be one of: {', '.join(checks)}")
    if not isinstance(f.declined_only, bool):
        raise ConfigurationError("declined_only must be true or false")
    if f.sort not in SORT_COLUMNS:
        raise ConfigurationError(f"sort must be one of: {', '.join(SORT_COLUMNS)}")
    if not isinstance(f.descending, bool):
        raise ConfigurationError("descending must be true or false")
    prefix = None
    if f.search is not None:
        prefix = "".join(str(f.search).split())
        if prefix and (not prefix.isascii() or not prefix.isdigit() or len(prefix) > _SEARCH_MAX):
            raise ConfigurationError(f"search must be the first digits of an NHS number (at most {_SEARCH_MAX})")

    keep = pd.Series(True, index=df.index)
    if f.category is not None:
        keep &= df["category"] == f.category
    if f.due_status is not None:
        keep &= df["due_status"] == f.due_status
    if f.missing_check is not None:
        keep &= df[f"{f.missing_check}_status"] != "done"
    if f.declined_only:
        keep &= df["declined"].fillna("") != ""
    if prefix:
        keep &= df["nhs_number"].astype(str).str.startswith(prefix)
    out = df.loc[keep]

    if f.sort == "priority":
        order = _priority_order(out)
        if f.descending:
            order = order[::-1]
        return out.iloc[order].reset_index(drop=True)
    if f.sort == "nhs_number":
        return out.sort_values("nhs_number", ascending=not f.descending, kind="stable").reset_index(drop=True)
    return out.sort_values(
        [f.sort, "nhs_number"], ascending=[not f.descending, True], kind="stable", na_position="last"
    ).reset_index(drop=True)


def worklist_summary(df: pd.DataFrame) -> dict[str, int]:
    """Counts for the worklist header: ``patients``, one per category and one per due status."""
    out = {"patients": len(df)}
    for value in CATEGORIES:
        out[value] = int((df["category"] == value).sum())
    for value in DUE_STATUSES:
        out[value] = int((df["due_status"] == value).sum())
    return out


# -- helpers ----------------------------------------------------------------------------------


def _due_column(check: Check, dates: pd.Series, as_of: date) -> pd.Series:
    """``due_date`` for every date of a column, computed once per distinct date (a region has few)."""
    cache: dict[Any, date | None] = {}
    out = []
    for value in dates:
        if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
            out.append(None)
            continue
        if value not in cache:
            day = value.date() if isinstance(value, pd.Timestamp) else value
            cache[value] = due_date(check, day, as_of)
        out.append(cache[value])
    return pd.Series(out, index=dates.index, dtype=object)


def _labels(index: pd.Index, flags: Iterable[tuple[str, pd.Series]]) -> pd.Series:
    """Comma-separated labels whose flag is true, per row, in the order given."""
    parts = [[label if flag else None for flag in series.fillna(False)] for label, series in flags]
    rows = [", ".join(p for p in row if p) for row in zip(*parts, strict=True)] if parts else [""] * len(index)
    return pd.Series(rows, index=index, dtype=object)


def _category(done: int, of: int) -> str:
    if done >= of:
        return "complete"
    if done >= NEAR_MISS_MIN:
        return "near_miss"
    return "incomplete"


def _priority_order(df: pd.DataFrame) -> list[int]:
    """Row positions in priority order: not complete first by checks done (most first), then complete
    patients by next due date; ties by NHS number."""
    keys = zip(df["category"] == "complete", df["checks_done"], df["next_due"], df["nhs_number"], strict=True)
    ranked = sorted(enumerate(keys), key=lambda item: (item[1][0], -item[1][1], item[1][2], item[1][3]))
    return [pos for pos, _ in ranked]
