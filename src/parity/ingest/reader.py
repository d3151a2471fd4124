"""Find an extract's files, check their headers and stage their rows in DuckDB.

Every row keeps its position in the file as ``line``, counted as a spreadsheet user would see it:
the CSV header is line 1 and the first data row line 2. Blank lines count (DuckDB skips them, so
their positions are added back), and a quoted value that spans several lines counts as one line.
A Parquet file has no header, but rows are numbered the same way (row ``n`` is line ``n + 1``), so a
CSV and a Parquet copy of the same table give the same line numbers.

Staging never runs a Python loop per row: CSV files are parsed by DuckDB's ``read_csv`` (every column
as text, malformed rows recorded in a rejects table) into a temporary table; Parquet files through
``read_parquet`` with ``file_row_number``: a small one copied into a temporary table, a big one read in place
(``STAGE_ROWS``).
"""

from __future__ import annotations

import csv
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from parity.errors import Problem
from parity.ingest.spec import FORMATS, SPECS, TABLE_ORDER

#: Prefix of every temporary object ingest creates in a DuckDB connection.
PREFIX = "_parity_ingest_"

# Categories of Parquet column types (checks.py decides which a column kind accepts).
STRING, INTEGER, FLOAT, DECIMAL, DATE, NULL, OTHER = (
    "string", "integer", "float", "decimal", "date", "null", "other")


@dataclass
class SourceFile:
    """One file of an extract, with its header checked."""

    table: str
    path: Path
    fmt: str                                   # "csv" or "parquet"
    columns: list[str] = field(default_factory=list)           # in file order
    categories: dict[str, str] = field(default_factory=dict)   # column -> STRING/INTEGER/...
    type_names: dict[str, str] = field(default_factory=dict)   # column -> type name for messages
    structural: bool = False                   # header/type problems: rows are not checked
    rows: int = 0
    relation: str = ""                         # SQL relation with `line` and the file's columns
    streamed: bool = False                     # relation reads the file itself (not a staged copy)
    stamp: tuple[int, ...] = ()                # file_stamp when staged

    @property
    def name(self) -> str:
        return self.path.name

    def problem(self, line: int | None, column: str | None, reason: str) -> Problem:
        return Problem(self.name, line, column, reason)


def sql_string(value: str) -> str:
    """A SQL string literal (for file paths, which DuckDB table functions need inline)."""
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def discover(folder: Path) -> tuple[dict[str, SourceFile], list[tuple[str, Problem]]]:
    """Match the folder's files to extract tables.

    A table's file is ``<table>.csv`` or ``<table>.parquet`` (case-insensitive). Other files in the
    folder are ignored. Two files for the same table (``events.csv`` and ``events.parquet``) are an
    error, as is a missing required file.
    """
    problems: list[tuple[str, Problem]] = []
    found: dict[str, list[Path]] = {t: [] for t in TABLE_ORDER}
    for path in sorted(folder.iterdir()):
        stem, _, suffix = path.name.lower().rpartition(".")
        if stem not in found or suffix not in FORMATS:
            continue
        # lstat: a symbolic link is refused, never followed. A link to /etc/passwd or
        # /proc/self/environ named patients.csv would otherwise be read (issue 12 finding 3).
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            problems.append((stem, Problem(path.name, None, None,
                                           "is a symbolic link: extract files must be regular files")))
        elif not stat.S_ISREG(mode):
            problems.append((stem, Problem(path.name, None, None,
                                           "is not a regular file (a folder, pipe or device)")))
        else:
            found[stem].append(path)
    sources: dict[str, SourceFile] = {}
    for table in TABLE_ORDER:
        paths = found[table]
        if len(paths) > 1:
            names = " and ".join(p.name for p in paths)
            problems.append((table, Problem(paths[0].name, None, None,
                                            f"{names} are both present: keep one file per table")))
        elif paths:
            path = paths[0]
            sources[table] = SourceFile(table, path, path.name.lower().rpartition(".")[2])
        elif SPECS[table].required_file:
            problems.append((table, Problem(table, None, None,
                                            f"file is missing: expected {table}.csv or {table}.parquet")))
    return sources, problems


def _arrow_category(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _arrow_category(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STRING
    if pa.types.is_integer(t):
        return INTEGER
    if pa.types.is_floating(t):
        return FLOAT
    if pa.types.is_decimal(t):
        return DECIMAL
    if pa.types.is_date(t):
        return DATE
    if pa.types.is_null(t):
        return NULL
    return OTHER


def read_header(src: SourceFile) -> list[Problem]:
    """Read the column names (and Parquet types) and check them against the extract spec."""
    problems: list[Problem] = []
    header_line: int | None = 1
    if src.fmt == "csv":
        try:
            with src.path.open("rb") as f:
                first = f.readline(1 << 20).decode("utf-8-sig")
            header = next(csv.reader([first.rstrip("\r\n")]), None) if first.strip() else None
        except UnicodeDecodeError:
            src.structural = True
            return [src.problem(1, None, "header row is not valid UTF-8")]
        except csv.Error:
            src.structural = True
            return [src.problem(1, None, "header row is not valid CSV")]
        if not header:
            src.structural = True
            return [src.problem(1, None, "file is empty: expected a header row of column names")]
        src.columns = [c.strip() for c in header]
        src.categories = dict.fromkeys(src.columns, STRING)
        src.type_names = dict.fromkeys(src.columns, "text")
    else:
        header_line = None
        try:
            schema = pq.read_schema(src.path)
        except (OSError, pa.ArrowException):
            src.structural = True
            return [src.problem(None, None, "not a readable Parquet file")]
        src.columns = list(schema.names)
        src.categories = {f.name: _arrow_category(f.type) for f in schema}
        src.type_names = {f.name: str(f.type) for f in schema}

    spec = SPECS[src.table]
    expected = spec.column_names
    listed = ", ".join(expected)
    if src.columns and not any(c.lower() in expected for c in src.columns):
        # No known column name at all: most likely the first row is data (a file without its header
        # row), so none of it is repeated back: it would be an NHS number, a date of birth, ...
        src.structural = True
        what = "is not a header row" if src.fmt == "csv" else "has no known column names"
        return [src.problem(header_line, None, f"{what}: expected column names {listed}")]
    seen: set[str] = set()
    for i, col in enumerate(src.columns, start=1):
        name = col if _shown(col) else f"#{i}"
        if col == "":
            problems.append(src.problem(header_line, f"#{i}", "a column has no name"))
        elif col in seen:
            problems.append(src.problem(header_line, name, "column appears more than once"))
        elif col not in expected:
            problems.append(src.problem(header_line, name, f"unknown column (expected: {listed})"))
        seen.add(col)
    for f in spec.fields:
        if f.required and f.name not in seen:
            problems.append(src.problem(header_line, f.name, "required column is missing"))
    if problems:
        src.structural = True
    return problems


_NAME_SHAPE = re.compile(r"^[A-Za-z_][A-Za-z_ ]{0,63}$")


def _shown(column: str) -> bool:
    """May an unknown column name be repeated in a message? Only when it is shaped like a column
    name (letters, '_' and spaces): anything with a digit, date or symbol could be a value."""
    return bool(_NAME_SHAPE.match(column))


# -- staging -----------------------------------------------------------------------------------

#: Parquet files with at most this many rows are copied into a temporary table; bigger ones are read in place.
STAGE_ROWS = 2_000_000


def file_stamp(path: Path) -> tuple[int, ...]:
    """Identity and version of a file (device, inode, size, modification time): changes if it is rewritten."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


_REJECT_REASONS = {
    "MISSING COLUMNS": "too few fields: expected {n}",
    "TOO MANY COLUMNS": "too many fields: expected {n}",
    "UNQUOTED VALUE": "badly quoted field",
    "INVALID ENCODING": "is not valid UTF-8",
    "INVALID UNICODE": "is not valid UTF-8",
    "LINE SIZE OVER MAXIMUM": "line is too long",
}


EXTRA = PREFIX + "extra"  # a column past the header's last: set only when a row has too many fields
# DuckDB's CSV reader turns this string into NULL. It never occurs in a file (it has control
# characters), so an empty field stays '' and only a field that is *missing* is NULL.
_NEVER = "\x01\x02parity-no-null\x03"


def stage(con: Any, src: SourceFile, max_lines: int) -> tuple[list[Problem], int]:
    """Make ``src.relation`` a relation over the file's rows with a ``line`` column.

    Returns malformed-row problems (CSV only; at most ``max_lines``) and their total count.
    Malformed rows (too few or too many fields, bad quoting or encoding) are left out of the relation.
    """
    base = PREFIX + src.table
    if src.fmt == "parquet":
        cols = ", ".join(quote_ident(c) for c in src.columns)
        select = (f"SELECT file_row_number + 2 AS line, {cols} "
                  f"FROM read_parquet({sql_string(str(src.path))}, file_row_number = true)")
        src.stamp = file_stamp(src.path)
        src.rows = int(con.execute(f"SELECT count(*) FROM ({select})").fetchone()[0])
        if src.rows <= STAGE_ROWS:
            # A small file (patients, registrations) is read several times and joined to: read every page
            # now, inside the caller's error handling, so a corrupt page is reported as this file's problem.
            con.execute(f"CREATE OR REPLACE TEMP TABLE {base}_src AS {select}")
        else:
            # A big file (events, medications) is read where it lies, once to check and once to write, so the
            # load never holds it in memory (issue 16 target 2: England's 56 million events took the load to
            # 9 GB). A corrupt page then surfaces in a check or the write: the caller reports it as this
            # file's problem there (``streamed``), and ``file_stamp`` refuses a file changed between the two.
            con.execute(f"CREATE OR REPLACE TEMP VIEW {base}_src AS {select}")
            src.streamed = True
        src.relation = f"{base}_src"
        return [], 0

    # One column more than the header names, padded with NULL when absent: a row with an extra field
    # (even an empty one, such as a trailing comma, which DuckDB otherwise drops silently) fills it,
    # and a row with too few fields has NULL in its last real column (issue 12 finding 4).
    columns = "{" + ", ".join(f"{sql_string(c)}: 'VARCHAR'" for c in [*src.columns, EXTRA]) + "}"
    # DuckDB keeps file order in the temp table only while insertion order is preserved.
    keep = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {base}_raw AS SELECT * FROM read_csv("
            f"{sql_string(str(src.path))}, header = true, auto_detect = false, columns = {columns}, "
            "delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = true, "
            f"nullstr = {sql_string(_NEVER)}, "
            f"store_rejects = true, rejects_table = '{base}_rej', rejects_scan = '{base}_rejscan')"
        )
    finally:
        if not keep:
            con.execute("SET preserve_insertion_order = false")
    all_rows = int(con.execute(f"SELECT count(*) FROM {base}_raw").fetchone()[0])

    rej = f"{base}_rej"
    duck_rejects = int(con.execute(f"SELECT count(DISTINCT line) FROM {rej}").fetchone()[0])
    blank: list[int] = []
    if _count_lines(src.path) != 1 + all_rows + duck_rejects:
        blank = _blank_lines(src.path)
    if duck_rejects or blank:
        _number_lines(con, base, rej, blank)
    else:
        cols = ", ".join(quote_ident(c) for c in [*src.columns, EXTRA])
        con.execute(f"CREATE OR REPLACE TEMP VIEW {base}_lined AS SELECT rowid + 2 AS line, {cols} "
                    f"FROM {base}_raw")

    n = len(src.columns)
    last = quote_ident(src.columns[-1])
    shape = (f"CASE WHEN {quote_ident(EXTRA)} IS NOT NULL THEN 'TOO MANY COLUMNS' "
             f"WHEN {last} IS NULL THEN 'MISSING COLUMNS' END")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {base}_bad AS "
        f"SELECT CAST(line AS BIGINT) AS line, min(error_type) AS kind FROM {rej} GROUP BY line "
        f"UNION ALL SELECT line, kind FROM (SELECT line, {shape} AS kind FROM {base}_lined) WHERE kind IS NOT NULL"
    )
    total_rejects = int(con.execute(f"SELECT count(*) FROM {base}_bad").fetchone()[0])
    first = con.execute(f"SELECT line, kind FROM {base}_bad ORDER BY line LIMIT {int(max_lines)}").fetchall()
    problems = [
        src.problem(int(line), None, _REJECT_REASONS.get(str(kind), "malformed CSV row").format(n=n))
        for line, kind in first
    ]
    cols = ", ".join(quote_ident(c) for c in src.columns)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {base}_good AS SELECT line, {cols} FROM {base}_lined "
                f"WHERE {quote_ident(EXTRA)} IS NULL AND {last} IS NOT NULL")
    src.relation = f"{base}_good"
    src.rows = all_rows - (total_rejects - duck_rejects)
    return problems, total_rejects


def _number_lines(con: Any, base: str, rejects: str, blank: list[int]) -> None:
    """Give each staged row its line number when some lines were skipped (malformed or blank).

    Row ``i`` (0-based, file order) is on line ``i + 2 + k``, where ``k`` is the number of skipped
    lines before it. The ``k``-th skipped line (1-based) ``s_k`` has ``s_k - 1 - k`` rows before it,
    so ``k`` is found with an ASOF join on that threshold. All in SQL: a file may have millions of
    malformed lines.
    """
    view = f"{base}_blank_arrow"
    con.register(view, pa.table({"line": pa.array(blank, pa.int64())}))
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {base}_skips AS SELECT threshold, max(k) AS k FROM ("
            "SELECT line - 1 - row_number() OVER (ORDER BY line) AS threshold, "
            "row_number() OVER (ORDER BY line) AS k FROM ("
            f"SELECT DISTINCT line FROM (SELECT CAST(line AS BIGINT) AS line FROM {rejects} "
            f"UNION ALL SELECT line FROM {view}) WHERE line >= 2)) GROUP BY threshold"
        )
    finally:
        con.unregister(view)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {base}_lined AS "
        f"SELECT r.rid + 2 + coalesce(s.k, 0) AS line, r.* EXCLUDE (rid) "
        f"FROM (SELECT rowid AS rid, * FROM {base}_raw) r "
        f"ASOF LEFT JOIN {base}_skips s ON r.rid >= s.threshold"
    )
    con.execute(f"DROP TABLE {base}_raw")


_CHUNK = 1 << 24


def _count_lines(path: Path) -> int:
    """Physical lines in a file (a last line without a newline counts)."""
    count = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


_BLANK = re.compile(rb"\n(?=\r?\n)")


def _blank_lines(path: Path) -> list[int]:
    """Line numbers of empty lines (rare: only read when the line counts disagree)."""
    lines: list[int] = []
    newlines = 0  # newlines before data[0]
    carry = b""
    with path.open("rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            data = carry + chunk
            # A match needs the two bytes after it: near the end of a chunk, defer to the next one.
            end = len(data) if not chunk else max(len(data) - 2, 0)
            count, pos = newlines, 0
            for m in _BLANK.finditer(data):
                if m.start() >= end:
                    break
                count += data.count(b"\n", pos, m.start())
                pos = m.start()
                lines.append(count + 2)  # this newline ends line count+1; the empty line follows
            newlines += data.count(b"\n", 0, end)
            carry = data[end:]
            if not chunk:
                break
    return sorted(set(lines))


def cleanup(con: Any) -> None:
    """Drop every temporary object ingest made in ``con``."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        f"WHERE table_schema = 'main' AND table_catalog = 'temp' AND table_name LIKE '{PREFIX}%'"
    ).fetchall()
    for name, kind in rows:
        what = "VIEW" if kind == "VIEW" else "TABLE"
        con.execute(f"DROP {what} IF EXISTS temp.main.{quote_ident(name)}")
