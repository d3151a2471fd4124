"""Read and validate a canonical extract on Spark: a folder (CSV or Parquet) or catalog tables.

The same rules and messages as the DuckDB loader: files are found and headers checked by
``parity.ingest.reader`` (unknown columns, missing required columns, Parquet types), and every
value is checked with the conditions and reasons of ``parity.ingest.checks.field_sql``, translated
from DuckDB SQL to Spark SQL with sqlglot. Errors name file, line (CSV header = line 1, Parquet row
``n`` = line ``n + 1``; catalog tables have no lines), column and reason, never a value.

Checks that join files (registrations of unknown patients, duplicate patients, unknown practices)
and the data-quality warnings stay with ``parity load``: on Spark the extract is read, not stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from parity.db.spark import canonical_select
from parity.errors import ConfigurationError, Problem
from parity.ingest.report import MAX_ERRORS, Collector, ValidationReport
from parity.ingest.spec import SPECS, TABLE_ORDER, Field

_FULL_MATCH = re.compile(r"regexp_full_match\((\{v\}), '((?:[^']|'')*)'\)")
_ISFINITE = re.compile(r"isfinite\(TRY_CAST\(\{v\} AS DOUBLE\)\)")


@cache
def _spark_checks(f: Field) -> tuple[tuple[str, str], ...]:
    """``field_sql``'s (condition, reason) pairs for a text value ``{v}``, in Spark SQL."""
    import sqlglot

    from parity.ingest.checks import field_sql
    from parity.ingest.reader import STRING

    out = []
    for cond, reason in field_sql(f, STRING).checks:
        # DuckDB's regexp_full_match and isfinite have no Spark spelling: anchor the pattern, and
        # test for infinities and NaN explicitly.
        cond = _FULL_MATCH.sub(lambda m: f"regexp_matches({m.group(1)}, '^(?:{m.group(2)})$')", cond)
        cond = _ISFINITE.sub("(abs(TRY_CAST({v} AS DOUBLE)) < 1e308)", cond)
        sql = sqlglot.transpile(cond.replace("{v}", "__v__"), read="duckdb", write="spark")[0]
        out.append((sql.replace("__v__", "{v}"), reason))
    return tuple(out)


def _typed(f: Field, v: str) -> str:
    """Spark SQL converting the checked text ``v`` to the column's type."""
    spark_type = {"DATE": "DATE", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT",
                  "DOUBLE PRECISION": "DOUBLE"}.get(f.sql_type.split("(")[0], "STRING")
    return f"TRY_CAST({v} AS {spark_type})"


def read_folder(session: Any, folder: Path, *, validate: bool = True) -> dict[str, Any]:
    """Spark DataFrames of the extract tables in ``folder``, in Parity's columns and types.

    Raises ``ExtractValidationError`` (file, line, column, reason) when validation finds errors."""
    from parity.ingest.checks import type_problem
    from parity.ingest.reader import discover, read_header

    collector = Collector()
    sources, problems = discover(folder)
    for table, problem in problems:
        collector.error(table, problem)
    raw: dict[str, tuple[Any, str]] = {}
    for table in TABLE_ORDER:
        src = sources.get(table)
        if src is None:
            continue
        header = read_header(src)
        for problem in header:
            collector.error(table, problem)
        if header:
            continue
        if src.fmt == "parquet":
            spec = SPECS[table]
            for col in src.columns:
                reason = type_problem(spec.field(col), src.categories[col], src.type_names[col])
                if reason:
                    collector.error(table, src.problem(None, col, reason))
            df = session.read.parquet(str(src.path))
        else:
            # Every column as text, as the DuckDB reader does, so the checks see what was written.
            df = session.read.csv(str(src.path), header=True, inferSchema=False, mode="PERMISSIVE",
                                  encoding="UTF-8", enforceSchema=False)
        raw[table] = (df, src.path.name)
    if collector.error_count:
        _raise(collector, {})
    return _check_and_type(session, raw, collector, lines=True, validate=validate)


def read_catalog(session: Any, schema: str, *, validate: bool = True) -> dict[str, Any]:
    """Spark DataFrames of ``SCHEMA.patients`` … ``SCHEMA.medications`` (``medications`` optional)."""
    collector = Collector()
    raw: dict[str, tuple[Any, str]] = {}
    for table in TABLE_ORDER:
        name = f"{schema}.{table}"
        if not session.catalog.tableExists(name):
            if SPECS[table].required_file:
                collector.error(table, Problem(name, None, None, "table is missing"))
            continue
        df = session.table(name)
        spec = SPECS[table]
        bad = False
        for col in df.columns:
            if col not in spec.column_names:
                collector.error(table, Problem(name, None, col, "unknown column (expected: "
                                               + ", ".join(spec.column_names) + ")"))
                bad = True
        for f in spec.fields:
            if f.required and f.name not in df.columns:
                collector.error(table, Problem(name, None, f.name, "required column is missing"))
                bad = True
        if not bad:
            raw[table] = (df, name)
    if collector.error_count:
        _raise(collector, {})
    return _check_and_type(session, raw, collector, lines=False, validate=validate)


def _check_and_type(session: Any, raw: Mapping[str, tuple[Any, str]], collector: Collector, *,
                    lines: bool, validate: bool) -> dict[str, Any]:
    from pyspark.sql import functions as F  # noqa: N812 - PySpark's own convention

    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    files: dict[str, str] = {}
    for table, (df, file) in raw.items():
        spec = SPECS[table]
        present = [f for f in spec.fields if f.name in df.columns]
        # Values as text (empty text is a missing value), as the checks are written for text.
        text = df.select(
            *[F.expr(f"NULLIF(TRIM(CAST(`{f.name}` AS STRING)), '')").alias(f.name) for f in present],
            F.monotonically_increasing_id().alias("_row_id"),
            F.spark_partition_id().alias("_part"),
        )
        files[table] = file
        if validate:
            _check(text, table, file, present, collector, lines=lines)
        typed = {f.name: _typed(f, f"`{f.name}`") for f in present}
        out[table] = text.selectExpr(*canonical_select(table, [f.name for f in present], typed=typed))
    if collector.error_count:
        _raise(collector, files, counts)
    return out


def _check(text: Any, table: str, file: str, fields: list[Field], collector: Collector, *, lines: bool) -> None:
    """One pass: per column, the number of the first failing check (NULL when fine); then the
    counts and the first ``MAX_ERRORS`` flagged rows with their lines."""
    from parity.ingest.checks import REQUIRED

    codes = []
    reasons: dict[str, dict[int, str]] = {}
    for f in fields:
        v = f"`{f.name}`"
        whens = [f"WHEN {v} IS NULL THEN {'1' if f.required else 'NULL'}"]
        reasons[f.name] = {1: REQUIRED}
        for i, (cond, reason) in enumerate(_spark_checks(f), start=2):
            whens.append(f"WHEN {cond.format(v=v)} THEN {i}")
            reasons[f.name][i] = reason
        codes.append(f"CASE {' '.join(whens)} END AS `_c_{f.name}`")
    # Required columns that are absent from the file were reported with the header.
    flagged = text.selectExpr("_row_id", "_part", *codes)
    any_bad = " OR ".join(f"`_c_{f.name}` IS NOT NULL" for f in fields) or "FALSE"
    flagged = flagged.where(any_bad).cache()
    try:
        totals = flagged.selectExpr(*[f"count(`_c_{f.name}`) AS `{f.name}`" for f in fields]).collect()[0]
        if not any(totals):
            return
        first = flagged.orderBy("_row_id").limit(MAX_ERRORS).collect()
        offsets = _partition_offsets(text) if lines else {}
        for f in fields:
            total = int(totals[f.name])
            if not total:
                continue
            shown = [r for r in first if r[f"_c_{f.name}"] is not None]
            problems = [Problem(file, _line(r, offsets) if lines else None, f.name,
                                reasons[f.name][int(r[f"_c_{f.name}"])]) for r in shown]
            collector.errors(table, problems, total)
    finally:
        flagged.unpersist()


def _partition_offsets(text: Any) -> dict[int, int]:
    """Rows before each partition: ``monotonically_increasing_id`` is the partition index times
    2**33 plus the row's position in its partition, and one file's partitions follow file order."""
    counts = dict(text.groupBy("_part").count().collect())
    offsets, before = {}, 0
    for part in sorted(counts):
        offsets[part] = before
        before += counts[part]
    return offsets


def _line(row: Any, offsets: Mapping[int, int]) -> int:
    position = int(row["_row_id"]) & ((1 << 33) - 1)
    return offsets.get(int(row["_part"]), 0) + position + 2  # header (or Parquet row 0) is line 1


def _raise(collector: Collector, files: Mapping[str, str], counts: Mapping[str, int] | None = None) -> None:
    report: ValidationReport = collector.report(dict(counts or {}), dict(files))
    report.raise_for_errors()
    raise ConfigurationError("extract validation failed")  # pragma: no cover - raise_for_errors raised
