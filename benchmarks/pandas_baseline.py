"""A straightforward pandas implementation of the ``phsmi`` measure, as the benchmark's baseline.

What an analyst would write without Parity: read the Parquet extract with pandas, keep the events
of the measure's codes with ``isin``, take the latest date per patient per code set with
``groupby().max()``, apply the register/remission rule and the 12-month window per check, then
count per organisation with ``groupby`` (practice -> PCN -> sub-ICB -> ICB -> region -> England)
using ``parity.orgs.practices``. It is written plainly but not made slow on purpose: only the
columns needed are read, and all events are first cut down to the measure's codes in one pass.

It follows Parity rules v1 (shared/docs/product.md "Counting rules") for measures without
lower-risk windows or personalised care adjustments (``phsmi``). ``benchmarks/run.py`` checks that
its counts equal the engine's, so the timing comparison is between two correct answers.

Run alone: ``python benchmarks/pandas_baseline.py EXTRACT_DIR --as-of 2024-03-31``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from parity.engine.base import LEVELS
from parity.engine.levels import ENGLAND, LEVEL_COLUMNS, UNMAPPED
from parity.rules.model import CORE_CHECKS, Measure

DATE_KWARGS = {"date_as_object": False}  # Parquet DATE -> datetime64, not Python date objects


@dataclass
class Extract:
    """The extract tables the measure reads, as pandas frames."""

    patients: pd.DataFrame
    registrations: pd.DataFrame
    events: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.patients) + len(self.registrations) + len(self.events)


def table_path(folder: Path, table: str) -> Path:
    """``folder/table.parquet``, or a folder ``folder/table/`` of Parquet parts."""
    for candidate in (folder / f"{table}.parquet", folder / table):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no {table}.parquet (or {table}/ folder) in {folder}")


def _read(folder: Path, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(table_path(folder, table), columns=list(columns) if columns else None,
                           to_pandas_kwargs=DATE_KWARGS)


def read_extract(folder: Path) -> Extract:
    """Read the three tables the measure needs (only the columns it uses)."""
    patients = _read(folder, "patients")
    keep = [c for c in ("nhs_number", "date_of_death") if c in patients.columns]
    patients = patients[keep]
    registrations = _read(folder, "registrations")
    if "end_date" not in registrations.columns:
        registrations["end_date"] = pd.NaT
    registrations = registrations[["nhs_number", "practice_code", "start_date", "end_date"]]
    events = _read(folder, "events", ["nhs_number", "date", "snomed_code"])
    return Extract(patients, registrations, events)


def _codes(table: dict[str, frozenset[int]], clusters: Iterable[str]) -> set[int]:
    out: set[int] = set()
    for name in clusters:
        out |= set(table.get(name, frozenset()))
    return out


def _latest(events: pd.DataFrame, codes: set[int], start: pd.Timestamp | None = None) -> pd.Series:
    """Latest event date per patient among ``codes`` (optionally on or after ``start``)."""
    mask = events["snomed_code"].isin(codes)
    if start is not None:
        mask &= events["date"] >= start
    return events.loc[mask].groupby("nhs_number")["date"].max()


def patient_status(extract: Extract, measure: Measure, as_of: date) -> pd.DataFrame:
    """One row per patient registered and alive on ``as_of`` with any register code: flags per check."""
    from parity.codes import codes_for

    if measure.pca is not None or any(c.lower_risk for c in measure.checks):
        raise NotImplementedError("the pandas baseline covers measures without PCA or lower-risk windows")
    day = pd.Timestamp(as_of)
    table = codes_for(sorted(measure.clusters()))

    # Practice on as_of: registered then (open end allowed); latest start wins, then smallest code.
    regs = extract.registrations
    current = regs[(regs["start_date"] <= day) & (regs["end_date"].isna() | (regs["end_date"] >= day))]
    current = current.sort_values(["nhs_number", "start_date", "practice_code"], ascending=[True, False, True])
    practice = current.drop_duplicates("nhs_number").set_index("nhs_number")["practice_code"]

    pats = extract.patients
    if "date_of_death" in pats.columns:
        dead = pats.loc[pats["date_of_death"].notna() & (pats["date_of_death"] <= day), "nhs_number"]
        practice = practice[~practice.index.isin(dead)]

    # Events up to as_of, cut down to the codes the measure reads.
    all_codes = _codes(table, measure.clusters())
    ev = extract.events
    ev = ev[(ev["date"] <= day) & ev["snomed_code"].isin(all_codes)]

    remission = _codes(table, measure.register.remission)
    diagnosis = _codes(table, measure.register.diagnosis) - remission  # in both lists: remission
    last_d = _latest(ev, diagnosis)
    last_r = _latest(ev, remission)
    people = last_d.index.union(last_r.index)
    people = people[people.isin(practice.index)]

    out = pd.DataFrame(index=people)
    out.index.name = "nhs_number"
    out["practice_code"] = practice.reindex(people)
    d = last_d.reindex(people)
    r = last_r.reindex(people)
    out["on_register"] = d.notna() & (r.isna() | (d >= r))  # same day: diagnosis wins
    out["in_denominator"] = out["on_register"]
    all_done = pd.Series(True, index=people)
    for check in measure.checks:
        start = pd.Timestamp(check.window.start(as_of))
        done = _latest(ev, _codes(table, check.done), start).reindex(people).notna()
        declined = _latest(ev, _codes(table, check.declined), start).reindex(people).notna()
        out[check.id] = done
        out[f"{check.id}_declined"] = declined & ~done
        all_done &= done
    core = out[list(CORE_CHECKS)]
    out["checks_done"] = core.sum(axis=1)
    out["all_six"] = out["in_denominator"] & core.all(axis=1)
    out["all_checks"] = out["in_denominator"] & all_done
    return out.reset_index()


def count_columns(measure: Measure) -> list[str]:
    ids = [c.id for c in measure.checks]
    return ["register", "all_six", *ids, *[f"{c}_declined" for c in ids], "all_checks", "excluded"]


def aggregate(status: pd.DataFrame, practices: pd.DataFrame, measure: Measure,
              levels: Sequence[str] = LEVELS) -> dict[str, pd.DataFrame]:
    """Counts per organisation at each level: ``org_code`` then ``count_columns(measure)``."""
    ids = [c.id for c in measure.checks]
    den = status["in_denominator"]
    counts = pd.DataFrame({"register": den.astype("int64"), "all_six": status["all_six"].astype("int64")})
    for c in ids:
        counts[c] = (status[c] & den).astype("int64")
    for c in ids:
        counts[f"{c}_declined"] = (status[f"{c}_declined"] & den).astype("int64")
    counts["all_checks"] = status["all_checks"].astype("int64")
    counts["excluded"] = (status["on_register"] & ~den).astype("int64")

    hierarchy = practices.drop_duplicates("practice_code").set_index("practice_code", drop=False)
    out: dict[str, pd.DataFrame] = {}
    for level in levels:
        if level == "england":
            key = pd.Series(ENGLAND[0], index=status.index)
        else:
            code_col = LEVEL_COLUMNS[level][0]
            key = status["practice_code"].map(hierarchy[code_col]).fillna(UNMAPPED)
        frame = counts.groupby(key.to_numpy()).sum()
        frame.index.name = "org_code"
        out[level] = frame.reset_index().sort_values("org_code", ignore_index=True)
    return out


def compute(extract: Extract, measure: Measure, as_of: date, practices: pd.DataFrame,
            levels: Sequence[str] = LEVELS) -> dict[str, pd.DataFrame]:
    """The whole measure on data already in memory: per-patient flags, then every level."""
    return aggregate(patient_status(extract, measure, as_of), practices, measure, levels)


def practices_for(structure: str) -> pd.DataFrame:
    """The practice hierarchy of ``structure`` (``practices`` table shape) from ``parity.orgs``."""
    from parity import orgs

    frame = orgs.practices(structure)
    return pd.DataFrame(frame)


def end_to_end(folder: Path, measure: Measure, as_of: date, structure: str) -> dict[str, pd.DataFrame]:
    """Read the files, then compute (what the benchmark times as 'end-to-end')."""
    return compute(read_extract(folder), measure, as_of, practices_for(structure))


# -- benchmark worker (run in its own process by benchmarks/run.py) -------------------------------

def worker(folder: str, measure_id: str, as_of: str, structure: str, repeats: int, result_dir: str) -> None:
    """Time end-to-end and compute-only runs; write timings (JSON) and the last result (Parquet).

    Runs in a separate process so that its memory is measured on its own and does not add to the
    engine's peak, and an out-of-memory failure here cannot take the whole benchmark down.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _rss import RssSampler, maxrss_bytes

    from parity.rules import load_measure

    measure = load_measure(measure_id)
    day = date.fromisoformat(as_of)
    out = Path(result_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, list[float]] = {"read": [], "end_to_end": [], "compute": []}
    cpu: dict[str, list[float]] = {"read": [], "end_to_end": [], "compute": []}
    with RssSampler() as rss:
        # Warm the package-data caches (hierarchy, codelists) so that no single run pays for them.
        from parity.codes import codes_for

        practices_for(structure)
        codes_for(sorted(measure.clusters()))
        extract = None
        result: dict[str, pd.DataFrame] = {}
        with rss.phase("end_to_end"):
            for _ in range(repeats):
                extract = None  # let the previous copy go before reading again
                c0, t0 = time.process_time(), time.perf_counter()
                extract = read_extract(Path(folder))
                c1, t1 = time.process_time(), time.perf_counter()
                result = compute(extract, measure, day, practices_for(structure))
                c2, t2 = time.process_time(), time.perf_counter()
                timings["read"].append(t1 - t0)
                timings["end_to_end"].append(t2 - t0)
                cpu["read"].append(c1 - c0)
                cpu["end_to_end"].append(c2 - c0)
        assert extract is not None
        with rss.phase("compute"):
            for _ in range(repeats):
                c0, t0 = time.process_time(), time.perf_counter()
                result = compute(extract, measure, day, practices_for(structure))
                timings["compute"].append(time.perf_counter() - t0)
                cpu["compute"].append(time.process_time() - c0)
        rows = {"patients": len(extract.patients), "registrations": len(extract.registrations),
                "events": len(extract.events)}
    for level, frame in result.items():
        frame.to_parquet(out / f"{level}.parquet", index=False)
    summary = {"timings": timings, "cpu": cpu, "rows": rows, "peak_rss": rss.peak, "phase_peak_rss": rss.phases,
               "maxrss": maxrss_bytes(), "pandas": pd.__version__, "numpy": np.__version__}
    (out / "timings.json").write_text(json.dumps(summary, indent=1))


def main(argv: Sequence[str] | None = None) -> None:
    from parity.rules import load_measure

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--as-of", required=True, type=date.fromisoformat)
    p.add_argument("--structure", default="2022-23")
    p.add_argument("--measure", default="phsmi")
    p.add_argument("--level", default="region", choices=LEVELS)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    result = end_to_end(args.folder, load_measure(args.measure), args.as_of, args.structure)
    print(result[args.level].to_string(index=False))
    print(f"end-to-end {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
