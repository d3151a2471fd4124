"""Recall and follow-up at region scale: what the care pages cost, against the plain worklist as baseline.

Builds the synthetic South East region (as ``make demo``: about 102,000 patients, 7.7 million events),
loads it into DuckDB, then times, as medians of ``--repeats`` runs:

- the **baseline**: the plain worklist of the largest practice (``reports.worklist``), status precomputed;
- the ranked worklist of that practice (baseline + contact log + DNA protocol + ranking and reasons);
- the invitations due for one month at that practice;
- the red-zone evaluation of the whole region (findings and follow-up, every level from one pass);
- one patient passport (PDF).

Writes the section between the ``care`` markers of ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/care.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from web_load import write_section  # noqa: E402

from parity.care import followup  # noqa: E402
from parity.care.service import care_worklist, invitations_due, passport_document, register_of  # noqa: E402
from parity.db import open_database  # noqa: E402
from parity.engine.base import LEVELS  # noqa: E402
from parity.ingest import load_extract  # noqa: E402
from parity.reports.results import ResultStore  # noqa: E402
from parity.synth import generate  # noqa: E402

START, END = "<!-- care:start -->", "<!-- care:end -->"
AS_OF = date(2026, 9, 30)


def median_s(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="parity-bench-care-"))
    summary = generate(work / "extract", scale="region", seed=42, as_of=AS_OF, fmt="parquet", structure="2022-23")
    db = open_database(str(work / "parity.duckdb"))
    load_extract(db, work / "extract")
    store = ResultStore(db)
    status = store.status("phsmi", AS_OF)  # precomputed, as after `parity load`
    practice = str(status.groupby("practice_code").size().idxmax())
    size = int((status["practice_code"] == practice).sum())

    def plain() -> Any:
        store.invalidate()
        store.status("phsmi", AS_OF)
        return store.practice_worklist("phsmi", AS_OF, practice)

    def ranked() -> Any:
        store.invalidate()
        return care_worklist(db, practice, AS_OF, results=store)

    base, wl = median_s(plain, args.repeats)
    rank_s, rk = median_s(ranked, args.repeats)
    due_s, batch = median_s(lambda: invitations_due(db, practice, "2026-10", AS_OF, results=store), args.repeats)
    register = register_of(store, AS_OF)

    def red_zone() -> Any:
        evaluated = followup.evaluate(db, AS_OF, register=register)
        return {lv: followup.red_zone_measure(db, AS_OF, lv, structure=store.structure_for(AS_OF), evaluated=evaluated)
                for lv in LEVELS}

    red_s, red = median_s(red_zone, args.repeats)
    patient = str(rk.iloc[0]["nhs_number"])
    pass_s, _ = median_s(lambda: passport_document(db, patient, AS_OF, "pdf", results=store), args.repeats)
    region = red["region"].iloc[0]
    lines = [START, "## Recall and follow-up (care)", "",
             f"`benchmarks/care.py --repeats {args.repeats}`: the South East as `make demo` builds it "
             f"({summary.describe().split(' as parquet')[0]}), in DuckDB, status precomputed. Medians; the baseline is "
             f"the plain worklist of the largest practice ({practice}, {size:,} patients), read from the stored status "
             "in the same run.", "",
             "| step | median | vs baseline |", "|---|---|---|",
             f"| **baseline**: plain worklist of {practice} | {base * 1000:.0f} ms | 1.0× |",
             f"| ranked worklist (contacts, DNA protocol, ranking, reasons) | {rank_s * 1000:.0f} ms | "
             f"{rank_s / base:.1f}× |",
             f"| invitations due in a month ({len(batch.due)} people) | {due_s * 1000:.0f} ms | {due_s / base:.1f}× |",
             f"| red-zone findings and follow-up, whole region, all six levels | {red_s:.1f} s | {red_s / base:.0f}× |",
             f"| one patient passport (PDF) | {pass_s * 1000:.0f} ms | {pass_s / base:.1f}× |", "",
             f"The region has {int(region['findings']):,} red-zone findings in "
             f"{int(region['patients_with_findings']):,} people on the register. The dashboard keeps the red-zone "
             "measure in memory per data version and referral count, so it is evaluated once after a load and again "
             "after each recorded referral.", END]
    section = "\n".join(lines)
    write_section(args.out, section, START, END)
    print(section)
    db.close()


if __name__ == "__main__":
    main()
