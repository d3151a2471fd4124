"""The reference engine: the counting rules in plain Python, one patient at a time.

This is the test oracle (as ehrQL's in-memory engine is for its SQL engines): it is written for
clarity, not speed, and every other engine must agree with it on any data (tests/test_properties.py).
It reads only what the measure names; all clinical content comes from ``parity.rules``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date

import pandas as pd

from parity import codes as codelists
from parity.engine.base import LEVELS, normalise_aggregate, normalise_status, status_columns
from parity.engine.dataset import Dataset, Row
from parity.engine.levels import describe, level_code, organisation_names
from parity.rules.model import Check, Criterion, Measure, Window


class ReferenceEngine:
    """Runs measures over an in-memory ``Dataset``."""

    name = "reference"

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._events: dict[str, list[Row]] = defaultdict(list)
        for e in dataset.events:
            self._events[e["nhs_number"]].append(e)
        self._meds: dict[str, list[Row]] = defaultdict(list)
        for m in dataset.medications:
            self._meds[m["nhs_number"]].append(m)
        self._regs: dict[str, list[Row]] = defaultdict(list)
        for r in dataset.registrations:
            self._regs[r["nhs_number"]].append(r)

    # -- per patient -------------------------------------------------------------------------
    def patient_status(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """Per-patient status on ``as_of`` (columns: ``parity.engine.base`` docstring)."""
        clusters = codelists.codes_for(measure.clusters())
        rows = []
        for patient in self.dataset.patients:
            row = self._patient(patient, measure, as_of, clusters)
            if row is not None:
                rows.append(row)
        df = pd.DataFrame(rows, columns=status_columns(measure))
        return normalise_status(df, measure)

    def _patient(self, patient: Row, measure: Measure, as_of: date,
                 clusters: dict[str, frozenset[int]]) -> dict | None:
        nhs = patient["nhs_number"]
        practice = _practice_on(self._regs[nhs], as_of)
        if practice is None:
            return None
        death = patient.get("date_of_death")
        if death is not None and death <= as_of:
            return None
        events = [e for e in self._events[nhs] if e["date"] <= as_of]

        remission = _union(clusters, measure.register.remission)
        diagnosis = _union(clusters, measure.register.diagnosis) - remission
        last_d = _latest(e["date"] for e in events if e["snomed_code"] in diagnosis)
        last_r = _latest(e["date"] for e in events if e["snomed_code"] in remission)
        if last_d is None and last_r is None:
            return None
        on_register = last_d is not None and (last_r is None or last_d >= last_r)

        row: dict = {"nhs_number": nhs, "practice_code": practice, "on_register": on_register}
        core_done = {}
        all_done = True
        statuses = {}
        for check in measure.checks:
            window = self._window_for(check, patient, events, as_of, clusters)
            done, status, when, value = _check_status(check, events, window.start(as_of),
                                                      check.window.start(as_of), clusters)
            row[check.id] = done
            row[f"{check.id}_status"] = status
            row[f"{check.id}_date"] = when
            row[f"{check.id}_value"] = value
            statuses[check.id] = status
            all_done = all_done and done
        for check in measure.core:
            core_done[check.id] = row[check.id]
        all_core = all(core_done.values())

        excluded = False
        if measure.pca is not None and on_register and not all_core:
            start = measure.pca.window.start(as_of)
            exception_codes = _union(clusters, measure.pca.any_of)
            has_exception = any(start <= e["date"] and e["snomed_code"] in exception_codes for e in events)
            every_missing_declined = all(
                statuses[c] == "declined" for c, done in core_done.items() if not done
            )
            excluded = has_exception or every_missing_declined
        in_denominator = on_register and not excluded
        row["in_denominator"] = in_denominator
        row["checks_done"] = sum(core_done.values())
        row["all_six"] = in_denominator and all_core
        row["all_checks"] = in_denominator and all_done
        return row

    def _window_for(self, check: Check, patient: Row, events: list[Row], as_of: date,
                    clusters: dict[str, frozenset[int]]) -> Window:
        if check.lower_risk is None:
            return check.window
        meds = [m for m in self._meds[patient["nhs_number"]] if m["date"] <= as_of]
        higher = any(
            _criterion_holds(c, patient, events, meds, as_of, clusters) for c in check.lower_risk.higher_risk_if
        )
        return check.window if higher else Window(check.lower_risk.months)

    # -- aggregates --------------------------------------------------------------------------
    def aggregate(self, measure: Measure, as_of: date, level: str, structure: str) -> pd.DataFrame:
        """Counts per organisation at ``level`` (see ``parity.engine.base``)."""
        return aggregate_status(self.patient_status(measure, as_of), self.dataset.practices,
                                measure, level, structure)

    def aggregate_all(self, measure: Measure, as_of: date, structure: str,
                      levels: Sequence[str] = LEVELS) -> dict[str, pd.DataFrame]:
        status = self.patient_status(measure, as_of)
        return {lv: aggregate_status(status, self.dataset.practices, measure, lv, structure) for lv in levels}

    def trend(self, measure: Measure, as_of_dates: Sequence[date], level: str, structure: str) -> pd.DataFrame:
        frames = []
        for d in as_of_dates:
            df = self.aggregate(measure, d, level, structure)
            df.insert(0, "as_of", d)
            frames.append(df)
        return pd.concat(frames, ignore_index=True)


# -- helpers ----------------------------------------------------------------------------------

def _union(clusters: dict[str, frozenset[int]], names: Iterable[str]) -> frozenset[int]:
    out: set[int] = set()
    for n in names:
        out |= clusters[n]
    return frozenset(out)


def _latest(dates: Iterable[date]) -> date | None:
    return max(dates, default=None)


def _practice_on(registrations: list[Row], as_of: date) -> str | None:
    """The practice registered at on ``as_of``: latest start wins, then the smallest code."""
    current = [
        r for r in registrations
        if r["start_date"] <= as_of and (r.get("end_date") is None or r["end_date"] >= as_of)
    ]
    if not current:
        return None
    current.sort(key=lambda r: (-r["start_date"].toordinal(), r["practice_code"]))
    return current[0]["practice_code"]


def _check_status(check: Check, events: list[Row], start: date, decline_start: date,
                  clusters: dict[str, frozenset[int]]) -> tuple[bool, str, date | None, float | None]:
    """Done in ``[start, as_of]``; otherwise declined when a decline code falls in the check's own
    window ``[decline_start, as_of]`` (12 months: a decline never counts over the lower-risk
    24-month lipid window, product.md "Declined / unsuitable")."""
    done_codes = _union(clusters, check.done)
    declined_codes = _union(clusters, check.declined)
    in_window = [e for e in events if e["date"] >= start]
    done = [e for e in in_window if e["snomed_code"] in done_codes]
    if done:
        when = max(e["date"] for e in done)
        values = [e["value"] for e in done if e["date"] == when and e.get("value") is not None]
        return True, "done", when, (max(values) if values else None)
    if any(e["snomed_code"] in declined_codes and e["date"] >= decline_start for e in events):
        return False, "declined", None, None
    return False, "missing", None, None


def _criterion_holds(c: Criterion, patient: Row, events: list[Row], meds: list[Row], as_of: date,
                     clusters: dict[str, frozenset[int]]) -> bool:
    """Whether one higher-risk criterion holds on ``as_of`` (kinds: ``rules.model.Criterion``)."""
    codes = _union(clusters, c.clusters)
    if c.kind == "ever":
        return any(e["snomed_code"] in codes for e in events)
    if c.kind == "unresolved":
        resolved = _union(clusters, c.resolved)
        last_c = _latest(e["date"] for e in events if e["snomed_code"] in codes)
        last_r = _latest(e["date"] for e in events if e["snomed_code"] in resolved)
        return last_c is not None and (last_r is None or last_c >= last_r)
    if c.kind == "latest_is":
        among = _union(clusters, c.among)
        relevant = [e for e in events if e["snomed_code"] in among]
        if not relevant:
            return False
        last = max(e["date"] for e in relevant)
        return any(e["snomed_code"] in codes for e in relevant if e["date"] == last)
    if c.kind == "medication":
        start = Window(c.months).start(as_of)
        return any(
            start <= m["date"] and (m.get("bnf_code") or "").startswith(c.bnf_prefix) for m in meds
        )
    if c.kind == "value_at_least":
        valued = [e for e in events if e["snomed_code"] in codes and e.get("value") is not None]
        if not valued:
            return False
        last = max(e["date"] for e in valued)
        value = max(e["value"] for e in valued if e["date"] == last)
        return value >= c.threshold_for(patient.get("ethnicity"))
    raise ValueError(f"unknown criterion kind {c.kind!r}")


def aggregate_status(status: pd.DataFrame, practices: list[Row], measure: Measure, level: str,
                     structure: str) -> pd.DataFrame:
    """Aggregate a per-patient status frame to one row per organisation at ``level``."""
    lookup = {p["practice_code"]: p for p in practices if p["structure"] == structure}
    groups: dict[str, dict] = {}
    check_ids = [c.id for c in measure.checks]
    for rec in status.to_dict("records"):
        key = level_code(lookup.get(rec["practice_code"]), level)
        g = groups.get(key)
        if g is None:
            g = {"register": 0, "all_six": 0, "all_checks": 0, "excluded": 0}
            for c in check_ids:
                g[c] = 0
                g[f"{c}_declined"] = 0
            groups[key] = g
        if rec["on_register"] and not rec["in_denominator"]:
            g["excluded"] += 1
        if not rec["in_denominator"]:
            continue
        g["register"] += 1
        g["all_six"] += int(rec["all_six"])
        g["all_checks"] += int(rec["all_checks"])
        for c in check_ids:
            g[c] += int(rec[c])
            g[f"{c}_declined"] += int(rec[f"{c}_status"] == "declined")
    names = organisation_names(structure, level, practices) if level != "england" else {}
    rows = []
    for org_code, g in groups.items():
        org_name, parent_code = describe(org_code, level, structure, names)
        rows.append({"org_code": org_code, "org_name": org_name, "level": level,
                     "parent_code": parent_code, "percent": None, **g})
    columns = ["org_code", "org_name", "level", "parent_code", "percent", "register", "all_six",
               "all_checks", "excluded", *check_ids, *[f"{c}_declined" for c in check_ids]]
    return normalise_aggregate(pd.DataFrame(rows, columns=columns), measure)
