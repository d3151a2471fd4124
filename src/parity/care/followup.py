"""Follow-up of red-zone results (mission feature M6): findings, referrals and the red-zone measure.

"Don't just screen - intervene for all patients in the red zone" (Lester tool, clinical-spec.md §4, S14).
``findings`` lists every abnormal result of the patients registered on a reporting date, with the
intervention it maps to (``parity.rules.interventions``) and whether it was followed up within 3 months;
``parity.care.referrals`` tracks a referral offered -> accepted/declined -> completed in the append-only
``referrals`` table; ``red_zone_measure`` counts findings without follow-up at every organisation level.

SQL here is one text for DuckDB and PostgreSQL (``?`` parameters); the rules are evaluated in pandas with the
same ``Criterion.matches`` that ``Finding.evaluate`` uses for one patient. No patient data goes into
exceptions or logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from parity.care.referrals import (
    FOLLOW_UP_MONTHS,
    ensure_followup_schema,
    in_list,
    py_datetime,
    referral_rows,
    sql_list,
)
from parity.db import Database
from parity.errors import ConfigurationError
from parity.rules.interventions import Finding, InterventionCatalogue, load_interventions
from parity.rules.model import Window, months_before

# -- findings -----------------------------------------------------------------------------------------

FINDING_COLUMNS = ["nhs_number", "practice_code", "finding_id", "finding_label", "value_text", "finding_date",
                   "intervention_id", "intervention_label", "referral_id", "referral_state", "followed_up",
                   "overdue"]


def _population(db: Database, as_of: date, nhs_numbers: Sequence[str] | None) -> pd.DataFrame:
    """Patients registered at a practice on ``as_of`` and alive: nhs_number, practice_code, ethnicity.

    Registered on as_of: start <= as_of <= end (open end allowed); latest start wins, then the smallest
    practice code (as the engines, product.md counting rules). Alive: no date of death on or before as_of.
    """
    sql = ("SELECT r.nhs_number, r.practice_code, r.start_date, p.ethnicity FROM registrations r "
           "JOIN patients p ON p.nhs_number = r.nhs_number "
           "WHERE r.start_date <= ? AND (r.end_date IS NULL OR r.end_date >= ?) "
           "AND (p.date_of_death IS NULL OR p.date_of_death > ?)")
    params: list[Any] = [as_of, as_of, as_of]
    if nhs_numbers is not None:
        if not nhs_numbers:
            return pd.DataFrame(columns=["nhs_number", "practice_code", "ethnicity"])
        sql += " AND " + in_list("r.nhs_number", nhs_numbers)
        params += list(nhs_numbers)
    df = pd.DataFrame(db.execute(sql, params), columns=["nhs_number", "practice_code", "start_date", "ethnicity"])
    df["start_ord"] = [-d.toordinal() for d in df["start_date"]]
    df = df.sort_values(["nhs_number", "start_ord", "practice_code"]).drop_duplicates("nhs_number", keep="first")
    return df[["nhs_number", "practice_code", "ethnicity"]].reset_index(drop=True)


def _events(db: Database, codes: Iterable[int], start: date, end: date, as_of: date,
            nhs_numbers: Sequence[str] | None, practice_codes: Sequence[str] | None = None) -> pd.DataFrame:
    """Events of ``codes`` dated ``start``..``end`` of patients registered on ``as_of`` (at one of
    ``practice_codes`` when given: a superset the caller narrows to the practice chosen for each patient)."""
    cols = ["nhs_number", "date", "snomed_code", "value"]
    code_list = sorted({int(c) for c in codes})
    if not code_list:
        return pd.DataFrame(columns=cols)
    if nhs_numbers is not None and len(nhs_numbers) <= _FEW_PATIENTS:
        return _events_of_few(db, code_list, start, end, as_of, nhs_numbers, practice_codes)
    # Codes are integers from the packaged codelists, so they are written inline (one short IN list).
    sql = (f"SELECT e.nhs_number, e.date, e.snomed_code, e.value FROM events e "
           f"WHERE e.date >= ? AND e.date <= ? AND e.snomed_code IN ({', '.join(str(c) for c in code_list)}) "
           "AND e.nhs_number IN (SELECT r.nhs_number FROM registrations r "
           "WHERE r.start_date <= ? AND (r.end_date IS NULL OR r.end_date >= ?)")
    params: list[Any] = [start, end, as_of, as_of]
    if practice_codes is not None:
        if not practice_codes:
            return pd.DataFrame(columns=cols)
        sql += " AND " + in_list("r.practice_code", practice_codes)
        params += list(practice_codes)
    sql += ")"
    if nhs_numbers is not None:
        if not nhs_numbers:
            return pd.DataFrame(columns=cols)
        sql += " AND " + in_list("e.nhs_number", nhs_numbers)
        params += list(nhs_numbers)
    df = pd.DataFrame(db.execute(sql, params), columns=cols)
    df["snomed_code"] = df["snomed_code"].astype("int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    return df


#: Up to this many patients (a patient page, a passport) events are read by NHS number alone, which the
#: index on events(nhs_number) answers (parity.db.indexes); the dates and codes are cut in pandas. A code
#: list in the SQL turns the query into a join over every event (issue 16 target 3).
_FEW_PATIENTS = 50


def _events_of_few(db: Database, code_list: list[int], start: date, end: date, as_of: date,
                   nhs_numbers: Sequence[str], practice_codes: Sequence[str] | None) -> pd.DataFrame:
    """``_events`` for a few patients: the same rows, read by NHS number first."""
    cols = ["nhs_number", "date", "snomed_code", "value"]
    if not nhs_numbers or (practice_codes is not None and not practice_codes):
        return pd.DataFrame(columns=cols)
    sql = ("SELECT DISTINCT nhs_number FROM registrations WHERE " + in_list("nhs_number", nhs_numbers)
           + " AND start_date <= ? AND (end_date IS NULL OR end_date >= ?)")
    params: list[Any] = [*nhs_numbers, as_of, as_of]
    if practice_codes is not None:
        sql += " AND " + in_list("practice_code", practice_codes)
        params += list(practice_codes)
    registered = sorted(str(r[0]) for r in db.execute(sql, params))
    if not registered:
        return pd.DataFrame(columns=cols)
    wanted = frozenset(code_list)
    rows = [r for r in db.execute("SELECT nhs_number, date, snomed_code, value FROM events WHERE "
                                  + in_list("nhs_number", registered), registered)
            if start <= r[1] <= end and int(r[2]) in wanted]
    df = pd.DataFrame(rows, columns=cols)
    df["snomed_code"] = df["snomed_code"].astype("int64")
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    return df


def _latest(df: pd.DataFrame, *, first: bool = False) -> pd.DataFrame:
    """One row per patient: the latest (or earliest) date; on one day the largest (or smallest) value."""
    df = df.sort_values(["nhs_number", "date", "value"], kind="stable")
    return df.drop_duplicates("nhs_number", keep="first" if first else "last")


_HIT_COLUMNS = ["nhs_number", "finding_id", "finding_date", "value_text"]


def _value_hits(f: Finding, ev: pd.DataFrame, eth: pd.Series, start: date) -> pd.DataFrame:
    parts = []
    for crit in f.criteria:
        in_window = ev[ev["date"] >= start]
        sub = in_window[in_window["snomed_code"].isin(crit.codes()) & in_window["value"].notna()]
        categories = crit.category_codes()
        if categories:
            # A category code without a value (e.g. "BMI 30+") reads as its category's lowest value
            # (Criterion.reading_value); the latest BMI record, valued or category, decides.
            cat = in_window[in_window["snomed_code"].isin(categories) & ~in_window.index.isin(sub.index)].copy()
            cat["value"] = cat["snomed_code"].map(categories).astype("float64")
            cat["category"] = True
            sub = pd.concat([sub.assign(category=False), cat], ignore_index=True)
        else:
            sub = sub.assign(category=False)
        if sub.empty:
            continue
        latest = _latest(sub)
        hit = latest[crit.matches(latest["value"], latest["nhs_number"].map(eth))]
        parts.append(pd.DataFrame({"nhs_number": hit["nhs_number"], "finding_date": hit["date"],
                                   "value_text": [crit.describe(v, category=c)
                                                  for v, c in zip(hit["value"], hit["category"], strict=True)]}))
    if not parts:
        return pd.DataFrame(columns=_HIT_COLUMNS)
    hits = pd.concat(parts, ignore_index=True).sort_values(["nhs_number", "finding_date", "value_text"])
    # The finding dates from its earliest triggering result (Parity choice, as Finding.evaluate). Texts are
    # joined in a plain loop: a pandas string aggregation runs per group in Python and took seconds at region
    # scale (benchmarks: 102,000 patients).
    texts: dict[object, str] = {}
    for nhs, text in zip(hits["nhs_number"], hits["value_text"], strict=True):
        texts[nhs] = f"{texts[nhs]}; {text}" if nhs in texts else text
    out = hits.drop_duplicates("nhs_number", keep="first")[["nhs_number", "finding_date"]].reset_index(drop=True)
    out["value_text"] = out["nhs_number"].map(texts)
    out["finding_id"] = f.id
    return out[_HIT_COLUMNS]


def _status_hits(f: Finding, ev: pd.DataFrame, start: date) -> pd.DataFrame:
    sub = ev[ev["snomed_code"].isin(f.codes()) & (ev["date"] >= start)].copy()
    sub["current"] = sub["snomed_code"].isin(f.match_codes())
    # Latest status; on one day a current-smoker code wins (as Finding.evaluate).
    latest = sub.sort_values(["nhs_number", "date", "current"], kind="stable")
    latest = latest.drop_duplicates("nhs_number", keep="last")
    hit = latest[latest["current"]]
    return pd.DataFrame({"nhs_number": hit["nhs_number"], "finding_id": f.id, "finding_date": hit["date"],
                         "value_text": f.label}, columns=_HIT_COLUMNS)


def _gain_hits(f: Finding, ev: pd.DataFrame, eth: pd.Series, start: date) -> pd.DataFrame:
    crit = f.criteria[0]
    valued = ev[ev["snomed_code"].isin(crit.codes()) & ev["value"].notna()]
    recent = valued[valued["date"] >= start]
    if recent.empty:
        return pd.DataFrame(columns=_HIT_COLUMNS)
    latest = _latest(recent)[["nhs_number", "date", "value"]].rename(columns={"date": "last_date", "value": "last"})
    latest["since"] = [months_before(d, f.months) for d in latest["last_date"]]
    both = valued.merge(latest, on="nhs_number")
    # Baseline: the earliest weight in the `months` before the latest one (same day excluded).
    before = both[(both["date"] >= both["since"]) & (both["date"] < both["last_date"])]
    if before.empty:
        return pd.DataFrame(columns=_HIT_COLUMNS)
    base = _latest(before, first=True)
    gain = (base["last"] - base["value"]).round(6)
    hit = base[crit.matches(gain, base["nhs_number"].map(eth))]
    gains = gain[hit.index]
    return pd.DataFrame({"nhs_number": hit["nhs_number"], "finding_id": f.id, "finding_date": hit["last_date"],
                         "value_text": [f"{crit.describe(g)} in {f.months} months" for g in gains]},
                        columns=_HIT_COLUMNS)


def _followup_steps(db: Database, catalogue: InterventionCatalogue, as_of: date, start: date,
                    nhs_numbers: Sequence[str] | None) -> pd.DataFrame:
    """Recorded referral steps and coded interventions up to ``as_of``: nhs_number, intervention_id, day, at,
    state, referral_id, rank (ties on one instant: recorded steps after coded ones, later seq after earlier)."""
    cols = ["nhs_number", "intervention_id", "day", "at", "state", "referral_id", "rank"]
    rec = referral_rows(db, nhs_numbers, before=datetime.combine(as_of + timedelta(days=1), time()))
    parts = []
    if not rec.empty:
        parts.append(pd.DataFrame({
            "nhs_number": rec["nhs_number"], "intervention_id": rec["intervention_id"],
            "day": [t.date() for t in rec["occurred_at"]], "at": rec["occurred_at"], "state": rec["state"],
            "referral_id": rec["referral_id"], "rank": rec["seq"].astype("int64")}))
    coded: dict[int, list[tuple[str, str]]] = {}
    for intervention in catalogue.interventions.values():
        for c in intervention.coded:
            coded.setdefault(c.code, []).append((intervention.id, c.state))
    ev = _events(db, coded, start, as_of, as_of, nhs_numbers)
    rows = [(nhs, iid, day, datetime.combine(day, time()), state, None, 0)
            for nhs, day, code in ev[["nhs_number", "date", "snomed_code"]].itertuples(index=False)
            for iid, state in coded[int(code)]]
    if rows:
        parts.append(pd.DataFrame(rows, columns=cols))
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]


def _empty_findings() -> pd.DataFrame:
    df = pd.DataFrame(columns=FINDING_COLUMNS)
    return df.astype({"followed_up": bool, "overdue": bool})


def _evaluate(db: Database, as_of: date, practice_codes: Iterable[str] | None,
              nhs_numbers: Iterable[str] | None,
              register: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(population, findings) on ``as_of``; ``register`` (NHS numbers) limits the population to a register."""
    catalogue = load_interventions()
    nhs_numbers = list(nhs_numbers) if nhs_numbers is not None else None
    practice_codes = list(practice_codes) if practice_codes is not None else None
    nhs_list = sql_list(nhs_numbers)
    practice_list = sql_list(practice_codes)
    pop = _population(db, as_of, nhs_list)
    if register is not None:
        pop = pop[pop["nhs_number"].isin(set(register))].reset_index(drop=True)
    if nhs_numbers is not None and nhs_list is None:
        pop = pop[pop["nhs_number"].isin(set(nhs_numbers))].reset_index(drop=True)
    if practice_codes is not None:
        pop = pop[pop["practice_code"].isin(set(practice_codes))].reset_index(drop=True)
    # Only results in the 12 months up to and including as_of count (the check window, product.md counting
    # rules); a weight gain's baseline may be up to 3 months older than the window.
    start = Window(12).start(as_of)
    codes: set[int] = set()
    for f in catalogue.findings:
        codes |= f.codes()
    ev = _events(db, codes, months_before(start, max(f.months for f in catalogue.findings)), as_of, as_of, nhs_list,
                 practice_list)
    ev = ev[ev["nhs_number"].isin(set(pop["nhs_number"]))]
    eth = pop.set_index("nhs_number")["ethnicity"]
    parts = []
    for f in catalogue.findings:
        if f.kind == "value":
            parts.append(_value_hits(f, ev, eth, start))
        elif f.kind == "status":
            parts.append(_status_hits(f, ev, start))
        else:
            parts.append(_gain_hits(f, ev, eth, start))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pop, _empty_findings()
    hits = pd.concat(parts, ignore_index=True)
    # A finding superseded by another the patient also has is not reported (HbA1c 48 is diabetes, not at-risk).
    present = set(zip(hits["nhs_number"], hits["finding_id"], strict=True))
    superseded = {f.id: f.superseded_by for f in catalogue.findings}
    keep = [(nhs, superseded[fid]) not in present for nhs, fid in zip(hits["nhs_number"], hits["finding_id"],
                                                                     strict=True)]
    hits = hits[keep].copy()
    hits["practice_code"] = hits["nhs_number"].map(pop.set_index("nhs_number")["practice_code"])
    hits["finding_label"] = hits["finding_id"].map({f.id: f.label for f in catalogue.findings})
    hits["intervention_id"] = hits["finding_id"].map({f.id: f.intervention for f in catalogue.findings})
    hits["intervention_label"] = hits["intervention_id"].map(
        {i.id: i.label for i in catalogue.interventions.values()})
    hits["due"] = [months_before(d, -FOLLOW_UP_MONTHS) for d in hits["finding_date"]]
    hits["order"] = hits["finding_id"].map({f.id: i for i, f in enumerate(catalogue.findings)})
    hits = hits.sort_values(["nhs_number", "order"]).reset_index(drop=True)
    hits["row"] = hits.index

    # Follow-up: a referral step (offered or later) or a coded intervention on or after the finding date,
    # up to as_of; followed up when one falls within 3 months of the finding date.
    steps = _followup_steps(db, catalogue, as_of, start, sql_list(hits["nhs_number"]))
    joined = hits[["row", "nhs_number", "intervention_id", "finding_date", "due"]].merge(
        steps, on=["nhs_number", "intervention_id"])
    joined = joined[joined["day"] >= joined["finding_date"]]
    in_time = set(joined.loc[joined["day"] <= joined["due"], "row"])
    last = joined.sort_values(["row", "at", "rank"], kind="stable").drop_duplicates("row", keep="last")
    hits["referral_state"] = hits["row"].map(last.set_index("row")["state"])
    hits["referral_id"] = hits["row"].map(last.set_index("row")["referral_id"])
    hits["followed_up"] = hits["row"].isin(in_time)
    hits["overdue"] = ~hits["followed_up"] & (hits["due"] < as_of)
    out = hits[FINDING_COLUMNS].astype({"followed_up": bool, "overdue": bool})
    for col in ("referral_state", "referral_id"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return pop, out


def _findings_of_one(db: Database, as_of: date, nhs_number: str, practice_codes: Iterable[str] | None,
                     register: Iterable[str] | None) -> pd.DataFrame:
    """``findings`` of one patient (a patient page, a passport) in plain Python: the same rules as
    ``_evaluate`` through ``InterventionCatalogue.evaluate`` (which the tests hold to the pandas path), without
    a dozen pandas frames of one row each (about 100 ms a page; issue 16 target 3). Every table is read by
    NHS number alone (``patient_rows``), so the cost follows this patient's records, not the database's."""
    from parity.db.indexes import patient_rows
    from parity.rules.interventions import Reading

    catalogue = load_interventions()
    nhs_number = str(nhs_number)
    if register is not None and nhs_number not in set(register):
        return _empty_findings()
    person = patient_rows(db, "patients", "ethnicity, date_of_death", nhs_number)
    if not person or (person[0][1] is not None and person[0][1] <= as_of):
        return _empty_findings()
    ethnicity = person[0][0]
    # Registered on as_of: latest start wins, then the smallest practice code (as ``_population``).
    registered = sorted((-start.toordinal(), str(code)) for code, start, end in patient_rows(
        db, "registrations", "practice_code, start_date, end_date", nhs_number)
        if start <= as_of and (end is None or end >= as_of))
    if not registered:
        return _empty_findings()
    practice = registered[0][1]
    if practice_codes is not None and practice not in set(practice_codes):
        return _empty_findings()

    start = Window(12).start(as_of)
    earliest = months_before(start, max(f.months for f in catalogue.findings))
    coded: dict[int, list[tuple[str, str]]] = {}
    for intervention in catalogue.interventions.values():
        for c in intervention.coded:
            coded.setdefault(c.code, []).append((intervention.id, c.state))
    finding_codes: set[int] = set()
    for f in catalogue.findings:
        finding_codes |= f.codes()
    readings, coded_events = [], []
    for day, code, value in patient_rows(db, "events", "date, snomed_code, value", nhs_number):
        code = int(code)
        if day > as_of:
            continue
        if code in finding_codes and day >= earliest:
            readings.append(Reading(day, code, None if value is None else float(value)))
        if code in coded and day >= start:
            coded_events.append((day, code))
    hits = catalogue.evaluate(readings, ethnicity, start=start, end=as_of)
    if not hits:
        return _empty_findings()

    # Follow-up steps, as ``_followup_steps``: recorded referral steps up to as_of (in referral and step
    # order), then coded interventions (by day and code); on one instant a recorded step ranks by its seq.
    ensure_followup_schema(db)
    before = datetime.combine(as_of + timedelta(days=1), time())
    recorded = sorted((str(rid), int(seq), str(iid), py_datetime(at), str(state)) for rid, seq, iid, at, state
                      in patient_rows(db, "referrals", "referral_id, seq, intervention_id, occurred_at, state",
                                      nhs_number) if py_datetime(at) < before)
    steps = [(iid, at.date(), at, state, rid, seq) for rid, seq, iid, at, state in recorded]
    steps += [(iid, day, datetime.combine(day, time()), state, None, 0)
              for day, code in sorted(coded_events) for iid, state in coded[code]]
    by_id = {f.id: f for f in catalogue.findings}
    labels = {i.id: i.label for i in catalogue.interventions.values()}
    rows = []
    for hit in hits:
        f = by_id[hit.finding_id]
        due = months_before(hit.date, -FOLLOW_UP_MONTHS)
        after = [s for s in steps if s[0] == f.intervention and s[1] >= hit.date]
        followed = any(s[1] <= due for s in after)
        last = sorted(after, key=lambda s: (s[2], s[5]))[-1] if after else None
        rows.append({"nhs_number": nhs_number, "practice_code": practice, "finding_id": f.id,
                     "finding_label": f.label, "value_text": hit.value_text, "finding_date": hit.date,
                     "intervention_id": f.intervention, "intervention_label": labels.get(f.intervention),
                     "referral_id": last[4] if last else None, "referral_state": last[3] if last else None,
                     "followed_up": followed, "overdue": not followed and due < as_of})
    out = pd.DataFrame(rows, columns=FINDING_COLUMNS).astype({"followed_up": bool, "overdue": bool})
    for col in ("referral_state", "referral_id"):
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def evaluate(db: Database, as_of: date, *, register: Iterable[str] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(population, findings) of every practice on ``as_of``, for ``red_zone_measure(evaluated=...)``."""
    return _evaluate(db, as_of, None, None, register)


def version(db: Database) -> str:
    """Changes whenever a referral step is recorded (results derived from referrals are kept per version)."""
    ensure_followup_schema(db)
    count, last = db.execute("SELECT COUNT(*), MAX(occurred_at) FROM referrals")[0]
    return f"{count}-{last}"


def findings(db: Database, as_of: date, *, practice_codes: Iterable[str] | None = None,
             nhs_numbers: Iterable[str] | None = None, register: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (patient, red-zone finding) on ``as_of``, for patients registered at a practice and alive.

    Columns: ``nhs_number, practice_code, finding_id, finding_label, value_text, finding_date`` (date of the
    result that triggered it; only results in the 12 months up to ``as_of`` count), ``intervention_id,
    intervention_label, referral_id, referral_state`` (latest recorded or coded state on or after the finding
    date, None if none), ``followed_up`` (a referral step or coded intervention within 3 months after the
    finding date, up to ``as_of``) and ``overdue`` (not followed up and the 3 months have passed).
    Thresholds: ``rules/interventions.toml`` (clinical-spec.md §4: S14, S26, S27). ``register`` (NHS numbers,
    e.g. the SMI register's denominator on ``as_of``) limits the patients looked at.
    """
    if nhs_numbers is not None:
        nhs_numbers = list(nhs_numbers)
        if len(nhs_numbers) == 1:
            return _findings_of_one(db, as_of, nhs_numbers[0], practice_codes, register)
    return _evaluate(db, as_of, practice_codes, nhs_numbers, register)[1]


# -- the red-zone measure ----------------------------------------------------------------------------

MEASURE_COLUMNS = ["org_code", "org_name", "patients_with_findings", "findings", "findings_followed_up",
                   "findings_overdue", "patients_overdue", "percent_followed_up", "parent_code"]


def red_zone_measure(db: Database, as_of: date, level: str, *, structure: str | None = None,
                     parent: str | None = None, settings: Any = None,
                     register: Iterable[str] | None = None,
                     evaluated: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Red-zone findings and their follow-up per organisation at ``level`` (practice, pcn, sub_icb, icb,
    region, england), one row per organisation with registered patients, sorted by ``org_code``.

    Columns: ``org_code, org_name, patients_with_findings, findings, findings_followed_up, findings_overdue``
    (no follow-up within 3 months), ``patients_overdue, percent_followed_up`` (100 * followed up / findings,
    one decimal, None without findings), ``parent_code``. Practices group by the ``practices`` table of
    ``structure`` (default: ``default_structure(db)``), as every Parity measure. ``parent`` keeps only
    organisations with that parent; with ``settings`` (``parity.settings.Settings``) disclosure control is
    applied (``suppress_below``/``round_to``). ``evaluated`` is ``evaluate(...)``'s result, so one evaluation
    serves every level.
    """
    from parity.db.schema import PRACTICES
    from parity.engine.base import LEVELS
    from parity.engine.levels import describe, level_code, organisation_names
    from parity.reports.measures import default_structure

    if level not in LEVELS:
        raise ConfigurationError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    structure = structure or default_structure(db)
    pop, found = evaluated if evaluated is not None else evaluate(db, as_of, register=register)
    cols = PRACTICES.column_names
    practices = [dict(zip(cols, r, strict=True)) for r in db.execute(
        f"SELECT {', '.join(cols)} FROM practices WHERE structure = ?", [structure])]
    lookup = {p["practice_code"]: p for p in practices}
    org_of = {pc: level_code(lookup.get(pc), level) for pc in set(pop["practice_code"])}
    names = organisation_names(structure, level, practices) if level != "england" else {}
    found = found.assign(org_code=found["practice_code"].map(org_of))
    by_org = dict(list(found.groupby("org_code", sort=False)))
    empty = found.iloc[0:0]
    rows = []
    for org in sorted(set(org_of.values())):
        f = by_org.get(org, empty)
        n, followed = len(f), int(f["followed_up"].sum())
        org_name, parent_code = describe(org, level, structure, names)
        rows.append({
            "org_code": org, "org_name": org_name, "patients_with_findings": f["nhs_number"].nunique(),
            "findings": n, "findings_followed_up": followed, "findings_overdue": int(f["overdue"].sum()),
            "patients_overdue": f.loc[f["overdue"].astype(bool), "nhs_number"].nunique(),
            "percent_followed_up": round(100.0 * followed / n, 1) if n else None, "parent_code": parent_code,
        })
    df = pd.DataFrame(rows, columns=MEASURE_COLUMNS)
    for col in MEASURE_COLUMNS[2:7]:
        df[col] = df[col].astype("int64")
    df["percent_followed_up"] = pd.array(df["percent_followed_up"].tolist(), dtype="Float64")
    if parent:
        df = df[df["parent_code"] == parent].reset_index(drop=True)
    if settings is not None:
        from parity.reports.disclosure import DisclosureControl

        control = DisclosureControl(settings.suppress_below, settings.round_to)
        df = control.apply(df, MEASURE_COLUMNS[2:7], numerator="findings_followed_up", denominator="findings",
                           percent="percent_followed_up")
    return df
