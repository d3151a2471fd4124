"""The hand-written floor: the ``phsmi`` measure at every level as ONE DuckDB query (issue 16, target 1).

What a good analyst would write by hand against Parity's loaded DuckDB file, with no engine: the
measure's codes as a ``VALUES`` list (code -> the role it plays), the latest date per patient and
role in one ``GROUP BY``, the registration on the reporting date, the rules as ``FILTER`` counts, and
every level in one ``GROUPING SETS`` over the practice hierarchy. It is written independently of
``parity.engine`` (it reads only the codelists, which are data, and the measure's clusters), and
``benchmarks/run.py`` checks that its counts equal Parity's before it reports a time.

It follows Parity rules v1 (shared/docs/product.md "Counting rules") for a measure without
lower-risk windows or personalised care adjustments (``phsmi``):

- on the register: a diagnosis code (``MH_COD``) on or before the reporting date and no later
  remission code (``MHREM_COD``); a code in both lists is remission; same day, the diagnosis wins;
- registered on the date (latest start wins, then the smallest practice code) and alive;
- a check is done with a ``done`` code in the 12 months to the date (window start = the day after the
  date 12 months earlier), declined with a ``declined`` code there and not done.

Run alone: ``python benchmarks/floor.py DATABASE.duckdb --as-of 2024-03-31``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from parity.rules.model import CORE_CHECKS, Measure, Window

LEVEL_KEYS = {  # level -> the practices column its organisation code is in (england: a constant)
    "practice": "practice_code", "pcn": "pcn_code", "sub_icb": "sub_icb_code", "icb": "icb_code",
    "region": "region_code", "england": None,
}


def _codes(table: Mapping[str, frozenset[int]], clusters: Iterable[str]) -> set[int]:
    out: set[int] = set()
    for name in clusters:
        out |= set(table.get(name, frozenset()))
    return out


def floor_sql(measure: Measure, table: Mapping[str, frozenset[int]], as_of: date, structure: str) -> str:
    """The single query: one row per (level, org_code) with the aggregate's count columns."""
    if measure.pca is not None or any(c.lower_risk for c in measure.checks):
        raise NotImplementedError("the floor query covers measures without PCA or lower-risk windows")
    roles: dict[str, set[int]] = {}
    remission = _codes(table, measure.register.remission)
    roles["diag"] = _codes(table, measure.register.diagnosis) - remission
    roles["rem"] = remission
    for i, check in enumerate(measure.checks):
        roles[f"done{i}"] = _codes(table, check.done)
        roles[f"decl{i}"] = _codes(table, check.declined)
    values = ",".join(f"({code},{r})" for r, (_name, codes) in enumerate(roles.items()) for code in sorted(codes))
    names = list(roles)
    day = f"DATE '{as_of.isoformat()}'"
    starts = {i: f"DATE '{Window(c.window.months).start(as_of).isoformat()}'" for i, c in enumerate(measure.checks)}
    latest = ",\n        ".join(f"max(d) FILTER (WHERE r = {r}) AS {name}" for r, name in enumerate(names))
    flags = []
    for i, check in enumerate(measure.checks):
        flags.append(f"coalesce(done{i} >= {starts[i]}, false) AS {check.id}")
        flags.append(f"coalesce(decl{i} >= {starts[i]}, false) AND NOT coalesce(done{i} >= {starts[i]}, false)"
                     f" AS {check.id}_declined")
    core = " AND ".join(c.id for c in measure.checks if c.id in CORE_CHECKS)
    every = " AND ".join(c.id for c in measure.checks)
    counts = ["count(*) AS register", f"count(*) FILTER (WHERE {core}) AS all_six"]
    counts += [f"count(*) FILTER (WHERE {c.id}) AS {c.id}" for c in measure.checks]
    counts += [f"count(*) FILTER (WHERE {c.id}_declined) AS {c.id}_declined" for c in measure.checks]
    counts += [f"count(*) FILTER (WHERE {every}) AS all_checks", "0 AS excluded"]
    # A practice missing from the structure counts as UNMAPPED at every level; one without a PCN
    # counts under no PCN (NULL).
    keys = [k for k in LEVEL_KEYS.values() if k]
    grouped = {lvl: k for lvl, k in LEVEL_KEYS.items() if k}
    sets = ", ".join(f"({k})" for k in grouped.values()) + ", ()"
    level_case = " ".join(f"WHEN grouping({k}) = 0 THEN '{lvl}'" for lvl, k in grouped.items())
    code_case = " ".join(f"WHEN grouping({k}) = 0 THEN {k}" for k in grouped.values())
    return f"""
WITH codes(code, r) AS (VALUES {values}),
latest AS (
    SELECT e.nhs_number,
        {latest}
    FROM (SELECT e.nhs_number, c.r, max(e.date) AS d
          FROM events e JOIN codes c ON e.snomed_code = c.code
          WHERE e.date <= {day}
          GROUP BY e.nhs_number, c.r) e
    GROUP BY e.nhs_number
),
registered AS (
    SELECT nhs_number, min(practice_code) AS practice_code
    FROM (SELECT *, max(start_date) OVER (PARTITION BY nhs_number) AS last_start
          FROM registrations
          WHERE start_date <= {day} AND (end_date IS NULL OR end_date >= {day}))
    WHERE start_date = last_start
    GROUP BY nhs_number
),
status AS (
    SELECT {", ".join(f"CASE WHEN p.practice_code IS NULL THEN 'UNMAPPED' ELSE p.{k} END AS {k}" for k in keys)},
           {", ".join(flags)}
    FROM latest l
    JOIN registered r USING (nhs_number)
    JOIN patients pt USING (nhs_number)
    LEFT JOIN (SELECT * FROM practices WHERE structure = '{structure}') p ON p.practice_code = r.practice_code
    WHERE l.diag IS NOT NULL AND (l.rem IS NULL OR l.diag >= l.rem)
      AND (pt.date_of_death IS NULL OR pt.date_of_death > {day})
)
SELECT CASE {level_case} ELSE 'england' END AS level,
       CASE {code_case} ELSE 'ENG' END AS org_code,
       {", ".join(counts)}
FROM status
GROUP BY GROUPING SETS ({sets})
"""


def run_floor(con: object, measure: Measure, table: Mapping[str, frozenset[int]], as_of: date,
              structure: str) -> tuple[dict[str, pd.DataFrame], float]:
    """Run the query on the DuckDB connection ``con``: (counts per level, query seconds)."""
    sql = floor_sql(measure, table, as_of, structure)
    t0 = time.perf_counter()
    frame = con.execute(sql).df()  # type: ignore[attr-defined]
    seconds = time.perf_counter() - t0
    out = {}
    for level in LEVEL_KEYS:
        part = frame[frame["level"] == level].drop(columns="level")
        out[level] = part.sort_values("org_code", ignore_index=True)
    return out, seconds


def main() -> None:
    import duckdb

    from parity.codes import codes_for
    from parity.rules import load_measure

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("database", type=Path)
    p.add_argument("--as-of", required=True, type=date.fromisoformat)
    p.add_argument("--structure", default="2022-23")
    p.add_argument("--level", default="region", choices=list(LEVEL_KEYS))
    args = p.parse_args()
    measure = load_measure("phsmi")
    con = duckdb.connect(str(args.database), read_only=True)
    result, seconds = run_floor(con, measure, codes_for(sorted(measure.clusters())), args.as_of, args.structure)
    print(result[args.level].to_string(index=False))
    print(f"query {seconds:.2f} s")


if __name__ == "__main__":
    main()
