"""Validate a canonical extract and load it into the database, all or nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from parity import dates
from parity.db.bulk import insert_rows
from parity.db.connection import Database
from parity.db.rewrite import rewrite
from parity.db.schema import EXTRACT_TABLES
from parity.errors import ConfigurationError, DatabaseError, Problem, ValidationError
from parity.ingest import plausibility
from parity.ingest.checks import (
    TableChecks,
    check_activity,
    check_patients,
    check_registrations,
    known_practices_table,
    plausibility_table,
    type_problem,
)
from parity.ingest.postgres import copy_from_duckdb, fetch_table, insert_new_rows
from parity.ingest.progress import Progress
from parity.ingest.reader import (
    PREFIX,
    SourceFile,
    cleanup,
    discover,
    file_stamp,
    quote_ident,
    read_header,
    sql_string,
    stage,
)
from parity.ingest.report import MAX_ERRORS, AggregatedProblem, Collector, ValidationReport
from parity.ingest.spec import SPECS, TABLE_ORDER

MODES = ("replace", "append")
#: DuckDB's memory limit while it checks and writes a load (issue 16 target 2: the whole process ≤ 2 GB;
#: Python and DuckDB's allocations outside its buffer pool come on top). Beyond it DuckDB spills to disk.
LOAD_MEMORY = "1.2GB"


@dataclass
class LoadResult:
    """A successful load: its id (also in the ``loads`` table), rows written per table, warnings.

    ``skipped`` counts rows not written in append mode because an identical row was already stored.
    """

    load_id: str
    counts: dict[str, int]
    warnings: list[AggregatedProblem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    mode: str = "replace"


def validate_extract(folder: Path | str, *, known_practices: frozenset[str] | None = None,
                     progress: bool = False) -> ValidationReport:
    """Check an extract folder without touching any database.

    Runs every check ``load_extract`` runs in replace mode and returns the report (errors in
    ``problems``, capped at 100 with ``error_count`` the total; aggregated ``warnings``; rows per
    table in ``counts``). It does not raise for a bad extract.
    """
    workdir = Path(tempfile.mkdtemp(prefix="parity-ingest-"))
    con = _work_connection(workdir)
    try:
        with Progress(progress) as prog:
            report, _ = _validate(con, Path(folder), known_practices, prog, None, dates.today(),
                                  append=False)
        return report
    finally:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)


def load_extract(db: Database, folder: Path | str, *, mode: str = "replace", progress: bool = False,
                 known_practices: frozenset[str] | None = None, allow_empty: bool = False) -> LoadResult:
    """Validate the extract in ``folder`` and load it into ``db`` in one transaction.

    ``mode="replace"`` empties every extract table (patients, registrations, events, medications)
    and writes the extract's rows. ``mode="append"`` adds the extract's rows to what is stored:
    a row identical to a stored row is skipped (counted in ``LoadResult.skipped``), while rows
    repeated within the extract are kept; a patient already stored with different details, or a
    registration (same NHS number, practice and start date) stored with a different end date, is
    an error; events and registrations may refer to patients already stored.

    Nothing is written unless every check passes: a bad extract raises ``ExtractValidationError``
    (a ``parity.errors.ValidationError``) naming file, line, column and reason of each problem, and
    leaves the database exactly as it was. A replace load of an extract without patients would
    empty the database, so it is refused unless ``allow_empty``. ``known_practices`` defaults to
    every GP practice known to ``parity.orgs``. The ``practices`` table is filled from
    ``parity.orgs`` if it is empty, and a row is added to ``loads``.

    On a DuckDB file the load is written into a copy that replaces the file only once committed
    (``parity.db.rewrite``), so even a process killed during the commit leaves the old data or the new.
    """
    if mode not in MODES:
        raise ConfigurationError(f"unknown load mode {mode!r}: use 'replace' or 'append'")
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigurationError(f"extract folder not found: {folder}")
    db.ensure_schema()
    with rewrite(db, memory_limit=LOAD_MEMORY) as target:
        return _load(target, folder, mode, progress, known_practices, allow_empty)


def _load(db: Database, folder: Path, mode: str, progress: bool, known_practices: frozenset[str] | None,
          allow_empty: bool) -> LoadResult:
    append = mode == "append"
    today = dates.today()
    workdir = Path(tempfile.mkdtemp(prefix="parity-ingest-"))
    in_place = db.dialect.validates_in_place  # DuckDB stages and checks in itself; others in a work file
    con = db.raw if in_place else _work_connection(workdir)
    progress_bar = None
    if in_place:  # DuckDB's own progress bar would print over ours (or on its own)
        progress_bar = con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0]
        con.execute("SET enable_progress_bar = false")
    try:
        with Progress(progress) as prog:
            existing = None
            if append:
                if in_place:
                    existing = {t: f"main.{t}" for t in ("patients", "registrations")}
                else:
                    with prog.stage("read stored patients and registrations"):
                        existing = {t: fetch_table(db.raw, con, t, workdir)
                                    for t in ("patients", "registrations")}
            report, checks = _validate(con, folder, known_practices, prog, existing, today, append=append)
            report.raise_for_errors()
            if not append and not allow_empty and not report.counts.get("patients"):
                raise ValidationError(
                    "the extract has no patients: a replace load would empty the database "
                    "(use --allow-empty if that is what you want)",
                    [Problem(checks["patients"].file if "patients" in checks else "patients", None, None,
                             "has no rows: a replace load would empty the database")])
            load_id = str(uuid.uuid4())
            with db.transaction():
                if in_place:
                    counts, skipped = _write_duckdb(con, checks, append, prog)
                else:
                    counts, skipped = _write_postgres(db, con, checks, append, prog)
                with prog.stage("record load"):
                    _ensure_practices(db)
                    insert_rows(db, "loads", [{
                        "load_id": load_id,
                        "loaded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        "source": str(folder.resolve())[:1000],
                        "mode": mode,
                        **counts,
                        "warnings": report.warning_rows,
                    }])
        return LoadResult(load_id, counts, list(report.warnings), skipped, mode)
    finally:
        if in_place:
            cleanup(con)
            con.execute(f"SET enable_progress_bar = {'true' if progress_bar else 'false'}")
        else:
            con.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _work_connection(workdir: Path) -> Any:
    """An in-memory DuckDB for staging and checks, spilling to ``workdir`` if memory runs short."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET temp_directory = {sql_string(workdir.as_posix())}")
    con.execute(f"SET memory_limit = '{LOAD_MEMORY}'")
    con.execute("SET enable_progress_bar = false")
    return con


def _default_practices() -> frozenset[str] | None:
    try:
        from parity.orgs import all_practice_codes
    except ImportError:
        return None
    return frozenset(all_practice_codes())


def _ensure_practices(db: Database) -> None:
    try:
        from parity.orgs import write_practices
    except ImportError:
        return
    if db.count("practices") == 0:
        write_practices(db)


def _validate(con: Any, folder: Path, known_practices: frozenset[str] | None, prog: Progress,
              existing: dict[str, str] | None, today: dt.date, *,
              append: bool) -> tuple[ValidationReport, dict[str, TableChecks]]:
    if not folder.is_dir():
        raise ConfigurationError(f"extract folder not found: {folder}")
    out = Collector()
    sources, found = discover(folder)
    for table, problem in found:
        out.error(table, problem)
    counts: dict[str, int] = {}
    for table in TABLE_ORDER:
        src = sources.get(table)
        if src is None:
            continue
        with prog.stage(f"read {src.name}") as st:
            for problem in read_header(src):
                out.error(table, problem)
            if src.fmt == "parquet" and not src.structural:
                for f in SPECS[table].fields:
                    if f.name in src.columns:
                        reason = type_problem(f, src.categories[f.name], src.type_names[f.name])
                        if reason:
                            out.error(table, src.problem(None, f.name, reason))
                            src.structural = True
            if src.structural:
                st.done(f"read {src.name}: not read (problems with its columns)")
                continue
            try:
                problems, total = stage(con, src, MAX_ERRORS)
            except duckdb.Error as exc:  # the message may quote data: report only its kind
                out.error(table, src.problem(None, None, f"cannot be read ({type(exc).__name__})"))
                src.structural = True
                st.done(f"read {src.name}: cannot be read")
                continue
            out.errors(table, problems, total)
            counts[table] = src.rows
            st.done(f"read {src.name}: {src.rows:,} rows")

    checks = {t: TableChecks(con, s) for t, s in sources.items() if not s.structural}
    unknown = "NHS number is not in the patients file" + (" or already loaded" if append else "")
    patients = None
    if "patients" in checks:
        pc = checks["patients"]
        with prog.stage(f"check {pc.file}") as st, _reading(con, out, pc.src):
            check_patients(pc, out, today)
            if existing:
                _append_conflicts(con, out, pc, existing["patients"], ["nhs_number"], "nhs_number",
                                  "a patient with this NHS number is already loaded with different "
                                  "details (load with mode 'replace' to change patients)")
            patients = _patient_keys(con, pc, existing)
            st.done(f"check {pc.file}: {pc.src.rows:,} rows")
    if "registrations" in checks:
        rc = checks["registrations"]
        with prog.stage(f"check {rc.file}") as st, _reading(con, out, rc.src):
            codes = known_practices if known_practices is not None else _default_practices()
            check_registrations(rc, out, patients,
                                None if codes is None else known_practices_table(con, codes), unknown)
            if existing:
                _append_conflicts(con, out, rc, existing["registrations"],
                                  ["nhs_number", "practice_code", "start_date"], "end_date",
                                  "this registration (same NHS number, practice and start date) is "
                                  "already loaded with a different end date")
            st.done(f"check {rc.file}: {rc.src.rows:,} rows")
    plaus = plausibility_table(con, plausibility.code_ranges()) if "events" in checks else None
    for table in ("events", "medications"):
        if table in checks:
            tc = checks[table]
            with prog.stage(f"check {tc.file}") as st, _reading(con, out, tc.src):
                check_activity(tc, out, patients, today, plaus, unknown)
                st.done(f"check {tc.file}: {tc.src.rows:,} rows")
    files = {t: s.name for t, s in sources.items()}
    return out.report(counts, files), checks


def _unreadable(con: Any, src: SourceFile) -> bool:
    """Does a full read of ``src``'s every column fail (a corrupt page)?"""
    cols = ", ".join(f"count({quote_ident(c)})" for c in src.columns)
    try:
        con.execute(f"SELECT count(*), {cols} FROM {src.relation}").fetchone()
    except duckdb.Error:
        return True
    return False


@contextlib.contextmanager
def _reading(con: Any, out: Collector, src: SourceFile) -> Iterator[None]:
    """Report a file read in place (``SourceFile.streamed``) that turns out unreadable as that file's problem.

    Such a file's pages are first read by its checks, not by staging: a corrupt page raises there. Only when
    a plain read of the file fails too is it the file's fault; any other error goes on up unchanged.
    """
    try:
        yield
    except duckdb.Error as exc:
        if not src.streamed or not _unreadable(con, src):
            raise
        # The message may quote data: report only its kind.
        out.error(src.table, src.problem(None, None, f"cannot be read ({type(exc).__name__})"))
        src.structural = True


def _check_unchanged(checks: dict[str, TableChecks]) -> None:
    """Refuse the load if a file read in place changed after it was checked (it is read again to write)."""
    problems = [Problem(tc.file, None, None, "changed while it was being loaded: nothing was loaded, load again")
                for tc in checks.values() if tc.src.streamed and file_stamp(tc.src.path) != tc.src.stamp]
    if problems:
        raise ValidationError("extract not loaded: " + "; ".join(str(p) for p in problems), problems)


def _write_error(con: Any, tc: TableChecks, exc: duckdb.Error) -> None:
    """A write that fails reading a file in place: raise it as that file's problem, else re-raise ``exc``."""
    if tc.src.streamed and _unreadable(con, tc.src):
        problem = tc.src.problem(None, None, f"cannot be read ({type(exc).__name__})")
        raise ValidationError(f"extract not loaded: {problem}", [problem]) from None
    raise exc


def _patient_keys(con: Any, pc: TableChecks, existing: dict[str, str] | None) -> str:
    """NHS number -> date of birth and death, from the file (and stored patients when appending)."""
    name = f"{PREFIX}patient_keys"
    sel = (f"SELECT nhs_number, date_of_birth, date_of_death FROM {pc.view} t "
           f"WHERE NOT {pc.bad('nhs_number')}")
    if existing:
        sel += f" UNION ALL SELECT nhs_number, date_of_birth, date_of_death FROM {existing['patients']}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT nhs_number, min(date_of_birth) "
                f"AS date_of_birth, min(date_of_death) AS date_of_death FROM ({sel}) GROUP BY nhs_number")
    return name


def _append_conflicts(con: Any, out: Collector, tc: TableChecks, stored: str, keys: list[str],
                      column: str, reason: str) -> None:
    """Rows whose key is already stored, but not as an identical row."""
    on = " AND ".join(f"c.{quote_ident(k)} = x.{quote_ident(k)}" for k in keys)
    ok = " AND ".join(f"NOT {tc.bad(k, 'c')}" for k in keys)
    same = " AND ".join(f"c.{quote_ident(n)} IS NOT DISTINCT FROM x.{quote_ident(n)}"
                        for n in tc.spec.column_names)
    total, lines = con.execute(
        f"SELECT count(*), min(line, {MAX_ERRORS}) FROM (SELECT c.line, bool_or({same}) AS same "
        f"FROM {tc.view} c JOIN {stored} x ON {on} WHERE {ok} GROUP BY c.line) WHERE NOT same"
    ).fetchone()
    out.rows(tc.src.table, tc.file, column, reason, int(total), lines or [])


def _not_stored(stored: str, alias: str = "c") -> str:
    """SQL condition: no identical row in ``stored`` (a Parity table)."""
    table = stored.split(".")[-1]
    same = " AND ".join(f"x.{quote_ident(c)} IS NOT DISTINCT FROM {alias}.{quote_ident(c)}"
                        for c in EXTRACT_TABLES[table].column_names)
    return f"NOT EXISTS (SELECT 1 FROM {stored} x WHERE {same})"


def _write_duckdb(con: Any, checks: dict[str, TableChecks], append: bool,
                  prog: Progress) -> tuple[dict[str, int], dict[str, int]]:
    counts = dict.fromkeys(TABLE_ORDER, 0)
    skipped = dict.fromkeys(TABLE_ORDER, 0)
    if not append:
        with prog.stage("empty extract tables"):
            for table in TABLE_ORDER:
                con.execute(f"DELETE FROM main.{table}")
    for table in TABLE_ORDER:
        tc = checks.get(table)
        if tc is None:
            continue
        with prog.stage(f"write {table}") as st:
            cols = tc.typed_select()
            sql = f"INSERT INTO main.{table} ({cols}) SELECT {tc.typed_select('c')} FROM {tc.view} c"
            if append:
                sql += " WHERE " + _not_stored(f"main.{table}")
            try:
                counts[table] = int(con.execute(sql).fetchone()[0])
            except duckdb.Error as exc:
                _write_error(con, tc, exc)
            skipped[table] = tc.src.rows - counts[table]
            st.done(f"write {table}: {counts[table]:,} rows")
    _check_unchanged(checks)
    return counts, skipped


LOCK_WAIT_SECONDS = 0.2   # each try at the extract tables' locks: shorter than PostgreSQL's deadlock_timeout (1 s)
LOCK_TRIES = 600          # about two minutes of retrying while readers come and go


def _lock_extract_tables(db: Database) -> None:
    """Take the extract tables' exclusive locks for a replace load without ever deadlocking a reader.

    A reader (the server's engine) may hold a shared lock on one table in a transaction and then ask for
    another; TRUNCATE takes the tables one by one, so the two can wait for each other (issue 12: "deadlock
    detected" killed a load beside a busy server). So the load asks for all the locks with a wait shorter
    than PostgreSQL's deadlock timeout, and on a timeout gives back what it got (to a savepoint, keeping
    the load's transaction) and tries again: the reader finishes, and the load never holds one table while
    waiting long for another."""
    import time

    from psycopg import errors as pg_errors

    tables = ", ".join(TABLE_ORDER)
    for attempt in range(LOCK_TRIES):
        db.execute("SAVEPOINT parity_extract_locks")
        db.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'")
        try:
            db.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
        except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected):
            db.execute("ROLLBACK TO SAVEPOINT parity_extract_locks")
            time.sleep(min(0.05 * (attempt + 1), 0.5))
            continue
        db.execute("RELEASE SAVEPOINT parity_extract_locks")
        db.execute("SET LOCAL lock_timeout = 0")
        return
    raise DatabaseError("the extract tables stayed busy for two minutes; nothing was loaded, try again")


def _write_postgres(db: Database, con: Any, checks: dict[str, TableChecks], append: bool,
                    prog: Progress) -> tuple[dict[str, int], dict[str, int]]:
    counts = dict.fromkeys(TABLE_ORDER, 0)
    skipped = dict.fromkeys(TABLE_ORDER, 0)
    if not append:
        with prog.stage("empty extract tables"):
            _lock_extract_tables(db)
            db.execute("TRUNCATE " + ", ".join(TABLE_ORDER))
    for table in TABLE_ORDER:
        tc = checks.get(table)
        if tc is None:
            continue
        with prog.stage(f"write {table}") as st:
            select = f"SELECT {tc.typed_select()} FROM {tc.view}"
            try:
                if append:
                    counts[table], skipped[table] = insert_new_rows(db.raw, con, select, table)
                else:
                    counts[table] = copy_from_duckdb(con, select, db.raw, table, tc.spec.column_names)
            except duckdb.Error as exc:
                _write_error(con, tc, exc)
            st.done(f"write {table}: {counts[table]:,} rows")
    _check_unchanged(checks)
    return counts, skipped
