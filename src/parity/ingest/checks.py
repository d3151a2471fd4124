"""Set-based checks of a staged extract, all in DuckDB SQL (no Python loop over rows).

For each table a view ``<prefix><table>_typed`` holds, per row: ``line``, every column as read
(``v_<column>``, text for CSV) and converted to its database type (``<column>``, NULL where the value
is bad). The write step selects the converted columns from the same view.

A table is checked in one pass: the rows, joined to the patients and other reference tables, are
tested with cheap boolean expressions (one per column, plus cross-file conditions and warnings),
and only flagged rows reach the aggregates. When a column has bad values, a second pass over the
flagged rows works out the reason for each (``CASE``, first matching check wins).

Errors name file, line, column and reason and never the value itself: messages must not carry
patient data. Warnings (implausible but possible values) are counted and reported with their
first few lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from parity.ingest import plausibility
from parity.ingest.reader import (
    DATE,
    DECIMAL,
    FLOAT,
    INTEGER,
    NULL,
    PREFIX,
    STRING,
    SourceFile,
    quote_ident,
    sql_string,
)
from parity.ingest.report import MAX_ERRORS, WARNING_EXAMPLES, Collector
from parity.ingest.spec import DATE as DATE_KIND
from parity.ingest.spec import (
    DMD,
    ETHNICITY,
    ETHNICITY_PATTERN,
    IMD,
    NHS,
    NUMBER,
    ODS,
    PRACTICE,
    SEX,
    SEX_VALUES,
    SNOMED,
    SPECS,
    TEXT,
    Field,
)

REQUIRED = "is empty: a value is required"

_ACCEPTS: dict[str, tuple[str, ...]] = {
    NHS: (STRING, INTEGER),
    DATE_KIND: (STRING, DATE),
    SNOMED: (STRING, INTEGER),
    DMD: (STRING, INTEGER),
    NUMBER: (STRING, INTEGER, FLOAT, DECIMAL),
    IMD: (STRING, INTEGER),
}
_CATEGORY_WORDS = {STRING: "text", INTEGER: "integer", FLOAT: "floating point", DECIMAL: "decimal",
                   DATE: "date"}

_NUMBER_RE = r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?"


def mod11_sql(v: str) -> str:
    """SQL: TRUE when the 10-digit text ``v`` has a valid NHS modulus-11 check digit.

    Weights 10..2 on the first nine digits; check = 11 - (sum mod 11), 11 becomes 0 and 10 is
    never valid. Integer arithmetic on the whole number is several times faster than ten substrings.
    """
    n = f"TRY_CAST({v} AS BIGINT)"
    terms = " + ".join(f"({n} // {10 ** (9 - i)} % 10) * {10 - i}" for i in range(9))
    return f"((11 - ({terms}) % 11) % 11 = {n} % 10)"


@dataclass(frozen=True)
class FieldSQL:
    """How one column is read, checked and converted. ``{v}`` stands for the value as read.

    ``checks`` are (condition, reason) pairs for a non-empty value; the first that holds is the
    reason given. ``typed`` converts the value to its database type.
    """

    field: Field
    source: str
    checks: tuple[tuple[str, str], ...]
    typed: str

    def bad(self, v: str) -> str:
        """SQL: TRUE when the value is bad (empty and required, or failing a check)."""
        conds = [c.format(v=v) for c, _ in self.checks]
        if self.field.required:
            return "(" + " OR ".join([f"{v} IS NULL", *conds]) + ")"
        if not conds:
            return "FALSE"
        return f"({v} IS NOT NULL AND (" + " OR ".join(conds) + "))"

    def case(self, v: str, known: str | None = None) -> str:
        """SQL: the number of the first failing check (1 = empty and required), else NULL.

        With ``known`` (a condition that the value matched a reference table), a known value is
        fine and a well-formed unknown one gets code ``len(checks) + 2``.
        """
        whens = [f"WHEN {known} THEN NULL"] if known else []
        whens.append(f"WHEN {v} IS NULL THEN {'1' if self.field.required else 'NULL'}")
        whens += [f"WHEN {c.format(v=v)} THEN {i}" for i, (c, _) in enumerate(self.checks, start=2)]
        tail = f" ELSE {len(self.checks) + 2}" if known else ""
        return "CASE " + " ".join(whens) + tail + " END"

    def reasons(self, unknown: str | None = None) -> dict[int, str]:
        out = {i: r for i, (_, r) in enumerate(self.checks, start=2)}
        if self.field.required:
            out[1] = REQUIRED
        if unknown:
            out[len(self.checks) + 2] = unknown
        return out


def type_problem(f: Field, category: str, type_name: str) -> str | None:
    """Reason a Parquet column's type cannot hold this column's values, or None."""
    accepted = _ACCEPTS.get(f.kind, (STRING,))
    if category in accepted or category == NULL:
        return None
    words = " or ".join(_CATEGORY_WORDS[c] for c in accepted)
    return f"Parquet type {type_name} is not allowed here: use {words}"


def field_sql(f: Field, category: str | None) -> FieldSQL:
    """SQL for one column; ``category`` is its source type category, None when the column is absent."""
    col = quote_ident(f.name)
    target = f.sql_type.replace("DOUBLE PRECISION", "DOUBLE")
    if category is None or category == NULL:
        source, category = "CAST(NULL AS VARCHAR)", STRING
    elif category == STRING:
        source = f"NULLIF({col}, '')"
    elif f.kind == NHS:
        source, category = f"CAST({col} AS VARCHAR)", STRING
    else:
        source = col

    checks: list[tuple[str, str]] = []
    if category == STRING:
        # Checked first, for every text column: DuckDB stores a NUL but PostgreSQL refuses one deep
        # inside the write with no file or line (issue 12 finding 4).
        checks.append(("contains({v}, chr(0))", "contains a NUL character (byte 0)"))
    typed = "{v}"
    kind = f.kind
    if kind == NHS:
        checks += [("NOT regexp_full_match({v}, '[0-9]{{10}}')", "must be 10 digits"),
                   ("NOT " + mod11_sql("{v}"), "check digit is wrong")]
    elif kind == DATE_KIND:
        if category == STRING:
            checks += [
                ("NOT regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')",
                 "must be a date written YYYY-MM-DD"),
                ("TRY_CAST({v} AS DATE) IS NULL OR starts_with({v}, '0000')", "is not a real date"),
            ]
            typed = "TRY_CAST({v} AS DATE)"
        else:
            checks.append(("year({v}) NOT BETWEEN 1 AND 9999", "is not a real date"))
    elif kind == SEX:
        allowed = ", ".join(sql_string(s) for s in SEX_VALUES)
        checks.append((f"{{v}} NOT IN ({allowed})", "must be one of: " + ", ".join(SEX_VALUES)))
    elif kind == ETHNICITY:
        checks.append((f"NOT regexp_full_match({{v}}, '{ETHNICITY_PATTERN}')",
                       "must be an NHS ethnic category letter: A-H, J-N, P, R, S or Z"))
    elif kind == IMD:
        if category == STRING:
            checks.append(("NOT regexp_full_match({v}, '[0-9]{{1,2}}') "
                           "OR TRY_CAST({v} AS INTEGER) NOT BETWEEN 1 AND 10",
                           "must be a whole number from 1 to 10"))
        else:
            checks.append(("{v} NOT BETWEEN 1 AND 10", "must be a whole number from 1 to 10"))
        typed = "TRY_CAST({v} AS SMALLINT)"
    elif kind in (SNOMED, DMD):
        what = "must be " + ("a SNOMED CT code" if kind == SNOMED else "a dm+d code") + ": 6 to 18 digits"
        if category == STRING:
            checks.append(("NOT regexp_full_match({v}, '[0-9]{{6,18}}')", what))
        else:
            checks.append(("CAST({v} AS HUGEINT) NOT BETWEEN 100000 AND 999999999999999999", what))
        typed = "TRY_CAST({v} AS BIGINT)"
    elif kind == NUMBER:
        if category == STRING:
            checks += [(f"NOT regexp_full_match({{v}}, '{_NUMBER_RE}')", "must be a number"),
                       ("NOT isfinite(TRY_CAST({v} AS DOUBLE))", "number is out of range")]
            typed = "TRY_CAST({v} AS DOUBLE)"
        else:
            if category == FLOAT:
                checks.append(("NOT isfinite({v})", "must be a finite number"))
            typed = "CAST({v} AS DOUBLE)"
    elif kind in (ODS, PRACTICE):
        checks.append(("NOT regexp_full_match({v}, '[A-Za-z0-9]{{1,10}}')",
                       "must be an ODS code: letters and digits, at most 10"))
    elif kind == TEXT:
        if f.max_length:
            checks.append((f"length({{v}}) > {f.max_length}",
                           f"must be at most {f.max_length} characters"))
    else:  # pragma: no cover - spec.py and this function must agree
        raise AssertionError(f"no checks for kind {kind}")
    if typed == "{v}" and target.split("(")[0] != "VARCHAR":
        typed = f"TRY_CAST({{v}} AS {target})"
    return FieldSQL(f, source, tuple(checks), typed)


@dataclass(frozen=True)
class Cond:
    """A row condition checked in the table's pass: an error or a warning about ``column``."""

    column: str | None
    sql: str
    reason: str


def raw(column: str, alias: str = "t") -> str:
    return f"{alias}.{quote_ident('v_' + column)}"


class TableChecks:
    """Checks of one staged file, over its typed view."""

    def __init__(self, con: Any, src: SourceFile) -> None:
        self.con = con
        self.src = src
        self.spec = SPECS[src.table]
        self.view = f"{PREFIX}{src.table}_typed"
        self.sql = {f.name: field_sql(f, src.categories.get(f.name) if f.name in src.columns else None)
                    for f in self.spec.fields}
        inner = ", ".join(f"{self.sql[f.name].source} AS {quote_ident('v_' + f.name)}"
                          for f in self.spec.fields)
        outer = ", ".join(
            f"{quote_ident('v_' + f.name)}, "
            f"{self.sql[f.name].typed.format(v=quote_ident('v_' + f.name))} AS {quote_ident(f.name)}"
            for f in self.spec.fields
        )
        con.execute(f"CREATE OR REPLACE TEMP VIEW {self.view} AS SELECT line, {outer} "
                    f"FROM (SELECT line, {inner} FROM {src.relation})")

    @property
    def table(self) -> str:
        return self.src.table

    @property
    def file(self) -> str:
        return self.src.name

    def typed_select(self, alias: str = "") -> str:
        a = f"{alias}." if alias else ""
        return ", ".join(f"{a}{quote_ident(f.name)}" for f in self.spec.fields)

    def bad(self, column: str, alias: str = "t") -> str:
        return self.sql[column].bad(raw(column, alias))

    def check(self, out: Collector, *, joins: str = "", errors: Sequence[Cond] = (),
              warnings: Sequence[Cond] = (), known_nhs: str | None = None,
              unknown_nhs: str | None = None) -> None:
        """One pass: bad values per column, ``errors`` and ``warnings`` (conditions over ``t``, the
        typed view, and whatever ``joins`` add). With ``known_nhs`` (a condition that the row's NHS
        number is a known patient), NHS numbers are checked only when not known, and a well-formed
        unknown one is the error ``unknown_nhs``.
        """
        bads = {}
        for f in self.spec.fields:
            if f.name == "nhs_number" and known_nhs:
                bads[f.name] = f"NOT ({known_nhs})"
            else:
                bads[f.name] = self.bad(f.name)
        cols = [c for c, sql in bads.items() if sql != "FALSE"]
        flags = [f"{bads[c]} AS {quote_ident('_b_' + c)}" for c in cols]
        flags += [f"{c.sql} AS _x{i}" for i, c in enumerate(errors)]
        flags += [f"{c.sql} AS _w{i}" for i, c in enumerate(warnings)]
        names = [quote_ident("_b_" + c) for c in cols] + [f"_x{i}" for i in range(len(errors))]
        names += [f"_w{i}" for i in range(len(warnings))]
        if not names:
            return
        aggs = [f"count_if({quote_ident('_b_' + c)})" for c in cols]
        aggs += [f"count_if(_x{i}), min(line, {MAX_ERRORS}) FILTER (WHERE _x{i})" for i in range(len(errors))]
        aggs += [f"count_if(_w{i}), min(line, {WARNING_EXAMPLES}) FILTER (WHERE _w{i})"
                 for i in range(len(warnings))]
        row = self.con.execute(
            f"SELECT {', '.join(aggs)} FROM (SELECT t.line, {', '.join(flags)} FROM {self.view} t{joins}) "
            f"WHERE {' OR '.join(names)}"
        ).fetchone()
        flagged = [c for i, c in enumerate(cols) if row[i]]
        i = len(cols)
        for cond in errors:
            out.rows(self.table, self.file, cond.column, cond.reason, int(row[i] or 0), row[i + 1] or [])
            i += 2
        for cond in warnings:
            out.warning(self.table, self.file, cond.column, cond.reason, int(row[i] or 0), row[i + 1] or [])
            i += 2
        if flagged:
            self._reasons(out, flagged, bads, joins, known_nhs, unknown_nhs)

    def _reasons(self, out: Collector, columns: list[str], bads: dict[str, str], joins: str,
                 known_nhs: str | None, unknown_nhs: str | None) -> None:
        """Second pass over flagged rows only: the reason each bad value is bad."""
        cases, aggs, specs = [], [], []
        for c in columns:
            fs = self.sql[c]
            known = known_nhs if c == "nhs_number" else None
            cases.append(f"{fs.case(raw(c), known)} AS {quote_ident('_e_' + c)}")
            for code, reason in fs.reasons(unknown_nhs if known else None).items():
                e = quote_ident("_e_" + c)
                aggs.append(f"count_if({e} = {code}), min(line, {MAX_ERRORS}) FILTER (WHERE {e} = {code})")
                specs.append((c, reason))
        where = " OR ".join(bads[c] for c in columns)
        row = self.con.execute(
            f"SELECT {', '.join(aggs)} FROM (SELECT t.line, {', '.join(cases)} FROM {self.view} t{joins} "
            f"WHERE {where})"
        ).fetchone()
        for i, (column, reason) in enumerate(specs):
            out.rows(self.table, self.file, column, reason, int(row[2 * i] or 0), row[2 * i + 1] or [])

    def duplicates(self, out: Collector, keys: Sequence[str], column: str, what: str) -> None:
        """Rows sharing ``keys`` with an earlier row are errors that name the earlier line."""
        ok = " AND ".join(f"NOT {self.bad(k)}" for k in keys)
        part = ", ".join(quote_ident(k) for k in keys)
        # A grouping finds whether any key repeats at a fraction of the window's cost; the window, which
        # names each earlier line, runs only when one does (rare: it is an error).
        if not self.con.execute(f"SELECT EXISTS (SELECT 1 FROM {self.view} t WHERE {ok} GROUP BY {part} "
                                "HAVING count(*) > 1)").fetchone()[0]:
            return
        base = (f"SELECT line, first FROM (SELECT line, min(line) OVER (PARTITION BY {part}) AS first "
                f"FROM {self.view} t WHERE {ok}) WHERE line > first")
        total = int(self.con.execute(f"SELECT count(*) FROM ({base})").fetchone()[0])
        if total:
            rows = self.con.execute(f"{base} ORDER BY line LIMIT {MAX_ERRORS}").fetchall()
            for line, first in rows:
                out.rows(self.table, self.file, column, f"{what} as line {first}", 1, [line])
            out.errors(self.table, [], total - len(rows))

    def exact_repeats(self, out: Collector) -> None:
        """Rows identical to an earlier row: a warning (they are kept).

        Rows are counted by a 64-bit hash first (cheap), then only rows whose hash repeats are
        compared column by column.
        """
        cols = self.typed_select()
        # One aggregate first: no two rows share a hash, so none repeats (the usual case; England's 56 million
        # events). Only when some do are the candidates kept and compared column by column.
        if not self.con.execute(f"SELECT count(*) - count(DISTINCT hash({cols})) FROM {self.view}").fetchone()[0]:
            return
        cand = f"{PREFIX}{self.table}_rep"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {cand} AS SELECT h FROM "
                         f"(SELECT hash({cols}) AS h FROM {self.view}) GROUP BY h HAVING count(*) > 1")
        total, lines = self.con.execute(
            f"SELECT count(*), min(line, {WARNING_EXAMPLES}) FROM (SELECT line, row_number() OVER "
            f"(PARTITION BY {cols} ORDER BY line) AS n FROM {self.view} "
            f"WHERE hash({cols}) IN (SELECT h FROM {cand})) WHERE n > 1"
        ).fetchone()
        out.warning(self.table, self.file, None, "row repeats an earlier row exactly (kept)",
                    int(total), lines or [])


def _date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def check_patients(pc: TableChecks, out: Collector, today: dt.date) -> None:
    t = _date(today)
    pc.check(out, warnings=[
        Cond("date_of_birth", f"t.date_of_birth > {t}", "date of birth is in the future"),
        Cond("date_of_birth", f"t.date_of_birth < {t} - INTERVAL 115 YEAR",
             "date of birth is more than 115 years ago"),
        Cond("date_of_death", "t.date_of_death < t.date_of_birth", "date of death is before date of birth"),
        Cond("date_of_death", f"t.date_of_death > {t}", "date of death is in the future"),
    ])
    pc.duplicates(out, ["nhs_number"], "nhs_number", "duplicate patient: same NHS number")


def check_registrations(rc: TableChecks, out: Collector, patients: str | None,
                        known_practices: str | None, unknown_nhs: str) -> None:
    joins, errors = "", [Cond("end_date", "t.end_date < t.start_date", "end date is before start date")]
    if known_practices is not None:
        joins += f" LEFT JOIN {known_practices} k ON t.practice_code = k.practice_code"
        errors.append(Cond("practice_code", f"k.practice_code IS NULL AND NOT {rc.bad('practice_code')}",
                           "not a known GP practice code"))
    known = None
    if patients is not None:
        joins += f" LEFT JOIN {patients} p ON t.nhs_number = p.nhs_number"
        known = "p.nhs_number IS NOT NULL"
    rc.check(out, joins=joins, errors=errors, known_nhs=known, unknown_nhs=unknown_nhs)
    rc.duplicates(out, ["nhs_number", "practice_code", "start_date"], "start_date",
                  "duplicate registration: same NHS number, practice and start date")


def check_activity(tc: TableChecks, out: Collector, patients: str | None, today: dt.date,
                   plaus: str | None, unknown_nhs: str) -> None:
    """Events and medications: NHS numbers must be patients; dates and values plausible.

    One pass joins the rows to the patients (date of birth and death) and to the plausibility
    ranges of the codes that carry a value.
    """
    warnings = [Cond("date", f"t.date > {_date(today)}", "date is in the future")]
    joins, known = "", None
    if patients is not None:
        joins += f" LEFT JOIN {patients} p ON t.nhs_number = p.nhs_number"
        known = "p.nhs_number IS NOT NULL"
        warnings += [
            Cond("date", "t.date < p.date_of_birth", "date is before the patient's date of birth"),
            Cond("date", "t.date > p.date_of_death", "date is after the patient's date of death"),
        ]
    if plaus is not None and tc.table == "events":
        joins += f" LEFT JOIN {plaus} c ON t.snomed_code = c.snomed_code"
        for i, r in enumerate(plausibility.RANGES):
            warnings.append(Cond("value", f"c.range = {i} AND (t.value < {r.low} OR t.value > {r.high})",
                                 f"{r.label} value outside {r.low:g}-{r.high:g}{r.unit_text}"))
    tc.check(out, joins=joins, warnings=warnings, known_nhs=known, unknown_nhs=unknown_nhs)
    tc.exact_repeats(out)


def register_arrow(con: Any, name: str, table: pa.Table) -> str:
    """Copy an Arrow table into a DuckDB temp table called ``name`` (prefixed); returns its name."""
    full = PREFIX + name
    view = full + "_arrow"
    con.register(view, table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {full} AS SELECT * FROM {view}")
    finally:
        con.unregister(view)
    return full


def known_practices_table(con: Any, codes: frozenset[str]) -> str:
    return register_arrow(con, "known_practices",
                          pa.table({"practice_code": pa.array(sorted(codes), pa.string())}))


def plausibility_table(con: Any, codes: Mapping[int, int]) -> str | None:
    if not codes:
        return None
    return register_arrow(con, "plausibility", pa.table({
        "snomed_code": pa.array(list(codes.keys()), pa.int64()),
        "range": pa.array(list(codes.values()), pa.int32()),
    }))
