"""Malformed extracts (issue 12 findings 3 and 4): every class refused, clearly, with nothing changed.

One parametrised test over the corpus, on a DuckDB file and on PostgreSQL, through the real command
(``parity load``, in-process). For each class: the exit code; the file, line, column and reason of
the first problem where they apply; no value from the files (NHS numbers, dates, codes, the bytes
of whatever a symbolic link points at) anywhere in the output; and the database checksum-identical.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .world import PEOPLE, base_tables, checksum, postgres_schema, run_cli, write_csv, write_extract

Tables = dict[str, list[list[str]]]


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Callable[[Path, Tables], None]
    code: int = 4                  # ValidationError; 2 = ConfigurationError
    where: str | None = None       # "patients.csv, line 3, column nhs_number" (the start of the message)
    reason: str | None = None      # a words of the reason
    args: tuple[str, ...] = ()     # extra options for parity load
    secrets: tuple[str, ...] = ()  # strings that must not appear in output (beyond the files' values)


def cell(table: str, row: int, column: str, value: str) -> Callable[[Path, Tables], None]:
    """Set one value (``row`` 1 = the first data row, which is line 2)."""
    def mutate(folder: Path, t: Tables) -> None:
        t[table][row][t[table][0].index(column)] = value
        write_csv(folder, table, t[table])
    return mutate


def raw_line(table: str, row: int, text: bytes) -> Callable[[Path, Tables], None]:
    """Replace one physical line (``row`` 0 = the header) with ``text``."""
    def mutate(folder: Path, t: Tables) -> None:
        path = folder / f"{table}.csv"
        lines = path.read_bytes().split(b"\n")
        lines[row] = text
        path.write_bytes(b"\n".join(lines))
    return mutate


def edit_line(table: str, row: int, edit: Callable[[bytes], bytes]) -> Callable[[Path, Tables], None]:
    def mutate(folder: Path, t: Tables) -> None:
        path = folder / f"{table}.csv"
        lines = path.read_bytes().split(b"\n")
        lines[row] = edit(lines[row])
        path.write_bytes(b"\n".join(lines))
    return mutate


def remove(table: str) -> Callable[[Path, Tables], None]:
    return lambda folder, t: (folder / f"{table}.csv").unlink()


def replace_file(table: str, data: bytes) -> Callable[[Path, Tables], None]:
    return lambda folder, t: (folder / f"{table}.csv").write_bytes(data)


def symlink(table: str, target: str) -> Callable[[Path, Tables], None]:
    def mutate(folder: Path, t: Tables) -> None:
        (folder / f"{table}.csv").unlink()
        os.symlink(target, folder / f"{table}.csv")
    return mutate


def as_directory(folder: Path, t: Tables) -> None:
    (folder / "patients.csv").unlink()
    (folder / "patients.csv").mkdir()


def as_fifo(folder: Path, t: Tables) -> None:
    (folder / "patients.csv").unlink()
    os.mkfifo(folder / "patients.csv")


def add_row(table: str, row: list[str]) -> Callable[[Path, Tables], None]:
    def mutate(folder: Path, t: Tables) -> None:
        t[table].append(row)
        write_csv(folder, table, t[table])
    return mutate


def header(table: str, names: list[str], drop: int | None = None) -> Callable[[Path, Tables], None]:
    """A new header row; ``drop`` removes that column from every data row too."""
    def mutate(folder: Path, t: Tables) -> None:
        rows = [names] + [[v for i, v in enumerate(r) if i != drop] if drop is not None else r for r in t[table][1:]]
        write_csv(folder, table, rows)
    return mutate


def parquet(table: str, frame: Callable[[Tables], pa.Table] | None = None,
            data: Callable[[bytes], bytes] | None = None) -> Callable[[Path, Tables], None]:
    """Replace ``table``.csv by a Parquet file: the valid table, or ``frame(t)``, bytes edited by ``data``."""
    def mutate(folder: Path, t: Tables) -> None:
        (folder / f"{table}.csv").unlink()
        rows = t[table]
        arrow = frame(t) if frame else pa.table({c: [r[i] or None for r in rows[1:]] for i, c in enumerate(rows[0])})
        path = folder / f"{table}.parquet"
        pq.write_table(arrow, path, compression="none", data_page_size=64)
        if data:
            path.write_bytes(data(path.read_bytes()))
    return mutate


def corrupt_middle(b: bytes) -> bytes:
    """Overwrite the bytes of the data pages, keeping the footer (schema) intact."""
    footer = int.from_bytes(b[-8:-4], "little") + 8
    body = bytearray(b)
    for i in range(8, len(b) - footer - 8, 3):
        body[i] = 0xFF
    return bytes(body)


def patients_frame(**override: pa.Array) -> Callable[[Tables], pa.Table]:
    def build(t: Tables) -> pa.Table:
        rows = t["patients"]
        cols = {c: pa.array([r[i] or None for r in rows[1:]], pa.string()) for i, c in enumerate(rows[0])}
        cols.update(override)
        return pa.table(cols)
    return build


def events_frame(**override: pa.Array) -> Callable[[Tables], pa.Table]:
    def build(t: Tables) -> pa.Table:
        rows = t["events"]
        cols = {c: pa.array([r[i] or None for r in rows[1:]], pa.string()) for i, c in enumerate(rows[0])}
        cols.update(override)
        return pa.table(cols)
    return build


def both(*steps: Callable[[Path, Tables], None]) -> Callable[[Path, Tables], None]:
    def mutate(folder: Path, t: Tables) -> None:
        for step in steps:
            step(folder, t)
    return mutate


N = len(PEOPLE)
P, R, E, M = "patients.csv", "registrations.csv", "events.csv", "medications.csv"
LONG = "x" * 40

CASES = [
    # -- files ---------------------------------------------------------------------------------
    Case("patients-missing", remove("patients"), where="patients", reason="file is missing"),
    Case("registrations-missing", remove("registrations"), where="registrations", reason="file is missing"),
    Case("events-missing", remove("events"), where="events", reason="file is missing"),
    Case("patients-empty-file", replace_file("patients", b""), where=f"{P}, line 1", reason="file is empty"),
    Case("patients-header-only", both(*(replace_file(t, (",".join(base_tables()[t][0]) + "\n").encode())
                                        for t in ("patients", "registrations", "events", "medications"))),
         reason="patients.csv: has no rows: a replace load would empty the database"),
    Case("no-header-row", edit_line("patients", 0, lambda b: b"9000079195,1950-01-10,female,A,E01024200,1,"),
         where=f"{P}, line 1", reason="is not a header row"),
    Case("symlink-etc-passwd", symlink("patients", "/etc/passwd"), where=P, reason="is a symbolic link",
         secrets=("root:x:0", "/bin/")),
    Case("symlink-proc-environ", symlink("patients", "/proc/self/environ"), where=P, reason="is a symbolic link",
         secrets=("PATH=", "HOME=")),
    Case("symlink-relative", symlink("events", "../elsewhere.csv"), where=E, reason="is a symbolic link"),
    Case("patients-is-a-directory", as_directory, where=P, reason="is not a regular file"),
    Case("patients-is-a-fifo", as_fifo, where=P, reason="is not a regular file"),
    Case("csv-and-parquet", lambda f, t: pq.write_table(pa.table({"nhs_number": ["x"]}), f / "events.parquet"),
         where=E, reason="are both present"),
    Case("two-spellings", lambda f, t: shutil.copy(f / "events.csv", f / "EVENTS.csv"), reason="are both present"),
    # -- headers -------------------------------------------------------------------------------
    Case("header-not-utf8", edit_line("patients", 0, lambda b: b + b",\xff\xfe"), where=f"{P}, line 1",
         reason="not valid UTF-8"),
    Case("header-duplicate-column", edit_line("patients", 0, lambda b: b.replace(b"lsoa", b"sex")),
         where=f"{P}, line 1, column sex", reason="appears more than once"),
    Case("header-unknown-name", edit_line("events", 0, lambda b: b.replace(b"unit", b"units")),
         where=f"{E}, line 1, column units", reason="unknown column"),
    Case("header-unknown-value-like", edit_line("patients", 0, lambda b: b.replace(b"lsoa", b"E01024200")),
         where=f"{P}, line 1, column #5", reason="unknown column"),
    Case("header-missing-required", header("patients", ["nhs_number", "sex", "ethnicity", "lsoa", "imd_decile",
                                                        "date_of_death"], drop=1),
         where=f"{P}, line 1, column date_of_birth", reason="required column is missing"),
    Case("header-empty-name", edit_line("registrations", 0, lambda b: b.replace(b"end_date", b"")),
         where=f"{R}, line 1, column #4", reason="has no name"),
    Case("header-trailing-comma", edit_line("registrations", 0, lambda b: b + b","),
         where=f"{R}, line 1, column #5", reason="has no name"),
    Case("header-quoted-broken", raw_line("events", 0, b'"nhs_number,date,snomed_code'), where=E),
    # -- row shape -----------------------------------------------------------------------------
    Case("trailing-comma", edit_line("patients", 2, lambda b: b + b","), where=f"{P}, line 3",
         reason="too many fields"),
    Case("two-trailing-commas", edit_line("events", 4, lambda b: b + b",,"), where=f"{E}, line 5",
         reason="too many fields"),
    Case("extra-field", edit_line("registrations", 1, lambda b: b + b",J82155"), where=f"{R}, line 2",
         reason="too many fields"),
    Case("too-few-fields", edit_line("patients", 3, lambda b: b.rsplit(b",", 2)[0]), where=f"{P}, line 4",
         reason="too few fields"),
    Case("one-field", raw_line("events", 2, b"9000079195"), where=f"{E}, line 3", reason="too few fields"),
    Case("unclosed-quote", edit_line("patients", 5, lambda b: b.replace(b"female", b'"female').replace(
        b"male", b'"male', 1) if b"female" not in b else b.replace(b"female", b'"female')),
         where=f"{P}, line"),
    Case("invalid-utf8-row", edit_line("events", 2, lambda b: b.replace(b"mm[Hg]", b"mm\xff\xfe")),
         where=f"{E}, line 3", reason="not valid UTF-8"),
    Case("line-too-long", edit_line("events", 2, lambda b: b + b"," + b"9" * 2_200_000), where=f"{E}, line 3"),
    Case("quoted-newline-in-nhs", edit_line("patients", 2, lambda b: b'"90001\n58389"' + b[10:]),
         where=f"{P}, line 3, column nhs_number", reason="must be 10 digits"),
    # -- NUL bytes -----------------------------------------------------------------------------
    Case("nul-in-nhs-number", edit_line("patients", 2, lambda b: b[:5] + b"\x00" + b[6:]),
         where=f"{P}, line 3, column nhs_number", reason="NUL character"),
    Case("nul-in-lsoa", cell("patients", 3, "lsoa", "E01\x0024203"), where=f"{P}, line 4, column lsoa",
         reason="NUL character"),
    Case("nul-in-unit", cell("events", 4, "unit", "mm\x00Hg"), where=f"{E}, line 5, column unit",
         reason="NUL character"),
    Case("nul-in-bnf", cell("medications", 2, "bnf_code", "04\x0002010"), where=f"{M}, line 3, column bnf_code",
         reason="NUL character"),
    # -- patients values -----------------------------------------------------------------------
    Case("nhs-9-digits", cell("patients", 1, "nhs_number", "900007919"), where=f"{P}, line 2, column nhs_number",
         reason="must be 10 digits"),
    Case("nhs-letters", cell("patients", 2, "nhs_number", "90001583AB"), where=f"{P}, line 3, column nhs_number",
         reason="must be 10 digits"),
    Case("nhs-check-digit", cell("patients", 2, "nhs_number", "9000158380"),
         where=f"{P}, line 3, column nhs_number", reason="check digit is wrong"),
    Case("nhs-empty", cell("patients", 4, "nhs_number", ""), where=f"{P}, line 5, column nhs_number",
         reason="a value is required"),
    Case("nhs-spaces", cell("patients", 4, "nhs_number", " 9000316751"), where=f"{P}, line 5, column nhs_number",
         reason="must be 10 digits"),
    Case("nhs-scientific", cell("patients", 4, "nhs_number", "9.000316E9"), where=f"{P}, line 5, column nhs_number",
         reason="must be 10 digits"),
    Case("nhs-duplicate", cell("patients", 3, "nhs_number", PEOPLE[0]), where=f"{P}, line 4, column nhs_number",
         reason="duplicate patient"),
    Case("dob-dd-mm-yyyy", cell("patients", 1, "date_of_birth", "10/01/1950"),
         where=f"{P}, line 2, column date_of_birth", reason="YYYY-MM-DD"),
    Case("dob-not-real", cell("patients", 1, "date_of_birth", "1950-02-30"),
         where=f"{P}, line 2, column date_of_birth", reason="not a real date"),
    Case("dob-year-zero", cell("patients", 1, "date_of_birth", "0000-01-10"),
         where=f"{P}, line 2, column date_of_birth", reason="not a real date"),
    Case("dob-with-time", cell("patients", 1, "date_of_birth", "1950-01-10T00:00"),
         where=f"{P}, line 2, column date_of_birth", reason="YYYY-MM-DD"),
    Case("dob-empty", cell("patients", 6, "date_of_birth", ""), where=f"{P}, line 7, column date_of_birth",
         reason="a value is required"),
    Case("sex-unknown-word", cell("patients", 2, "sex", "M"), where=f"{P}, line 3, column sex",
         reason="must be one of"),
    Case("sex-empty", cell("patients", 2, "sex", ""), where=f"{P}, line 3, column sex", reason="a value is required"),
    Case("ethnicity-bad-letter", cell("patients", 2, "ethnicity", "I"), where=f"{P}, line 3, column ethnicity",
         reason="ethnic category"),
    Case("ethnicity-two-letters", cell("patients", 2, "ethnicity", "AB"), where=f"{P}, line 3, column ethnicity",
         reason="ethnic category"),
    Case("lsoa-too-long", cell("patients", 2, "lsoa", "E0102420099"), where=f"{P}, line 3, column lsoa",
         reason="at most 9 characters"),
    Case("imd-zero", cell("patients", 2, "imd_decile", "0"), where=f"{P}, line 3, column imd_decile",
         reason="1 to 10"),
    Case("imd-eleven", cell("patients", 2, "imd_decile", "11"), where=f"{P}, line 3, column imd_decile",
         reason="1 to 10"),
    Case("imd-negative", cell("patients", 2, "imd_decile", "-1"), where=f"{P}, line 3, column imd_decile",
         reason="1 to 10"),
    Case("imd-word", cell("patients", 2, "imd_decile", "five"), where=f"{P}, line 3, column imd_decile",
         reason="1 to 10"),
    Case("dod-bad-format", cell("patients", 2, "date_of_death", "2024/01/01"),
         where=f"{P}, line 3, column date_of_death", reason="YYYY-MM-DD"),
    # -- registrations -------------------------------------------------------------------------
    Case("registration-unknown-patient", cell("registrations", 2, "nhs_number", "9999999999"),
         where=f"{R}, line 3, column nhs_number", reason="not in the patients file"),
    Case("practice-symbols", cell("registrations", 2, "practice_code", "J82-55"),
         where=f"{R}, line 3, column practice_code", reason="ODS code"),
    Case("practice-too-long", cell("registrations", 2, "practice_code", "J821551234567"),
         where=f"{R}, line 3, column practice_code", reason="ODS code"),
    Case("practice-unknown", cell("registrations", 2, "practice_code", "Q99999"),
         where=f"{R}, line 3, column practice_code", reason="not a known GP practice"),
    Case("practice-empty", cell("registrations", 2, "practice_code", ""),
         where=f"{R}, line 3, column practice_code", reason="a value is required"),
    Case("start-date-bad", cell("registrations", 2, "start_date", "2011-13-01"),
         where=f"{R}, line 3, column start_date", reason="not a real date"),
    Case("end-before-start", cell("registrations", 2, "end_date", "2000-01-01"),
         where=f"{R}, line 3, column end_date", reason="before start date"),
    Case("registration-duplicate", add_row("registrations", [PEOPLE[0], "J82155", "2010-04-01", ""]),
         where=f"{R}, line {N + 2}, column start_date", reason="duplicate registration"),
    # -- events --------------------------------------------------------------------------------
    Case("event-unknown-patient", cell("events", 3, "nhs_number", "9999999999"),
         where=f"{E}, line 4, column nhs_number", reason="not in the patients file"),
    Case("event-date-bad", cell("events", 3, "date", "yesterday"), where=f"{E}, line 4, column date",
         reason="YYYY-MM-DD"),
    Case("event-date-empty", cell("events", 3, "date", ""), where=f"{E}, line 4, column date",
         reason="a value is required"),
    Case("snomed-letters", cell("events", 3, "snomed_code", "38341OO3"), where=f"{E}, line 4, column snomed_code",
         reason="SNOMED CT code"),
    Case("snomed-short", cell("events", 3, "snomed_code", "38341"), where=f"{E}, line 4, column snomed_code",
         reason="SNOMED CT code"),
    Case("snomed-long", cell("events", 3, "snomed_code", "1" * 19), where=f"{E}, line 4, column snomed_code",
         reason="SNOMED CT code"),
    Case("snomed-empty", cell("events", 3, "snomed_code", ""), where=f"{E}, line 4, column snomed_code",
         reason="a value is required"),
    Case("value-word", cell("events", 2, "value", "high"), where=f"{E}, line 3, column value",
         reason="must be a number"),
    Case("value-comma-decimal", cell("events", 2, "value", '"131,5"'), where=f"{E}, line 3, column value",
         reason="must be a number"),
    Case("value-overflow", cell("events", 2, "value", "1e999"), where=f"{E}, line 3, column value",
         reason="out of range"),
    Case("value-infinity", cell("events", 2, "value", "inf"), where=f"{E}, line 3, column value",
         reason="must be a number"),
    Case("unit-too-long", cell("events", 2, "unit", LONG), where=f"{E}, line 3, column unit",
         reason="at most 32 characters"),
    Case("recorded-by-symbols", cell("events", 1, "recorded_by", "J82 155"), where=f"{E}, line 2, column recorded_by",
         reason="ODS code"),
    # -- medications ---------------------------------------------------------------------------
    Case("dmd-letters", cell("medications", 1, "dmd_code", "3241621100000110X"),
         where=f"{M}, line 2, column dmd_code", reason="dm+d code"),
    Case("medication-unknown-patient", cell("medications", 1, "nhs_number", "9999999999"),
         where=f"{M}, line 2, column nhs_number", reason="not in the patients file"),
    Case("medication-date-bad", cell("medications", 1, "date", "2024-00-10"), where=f"{M}, line 2, column date",
         reason="not a real date"),
    Case("bnf-too-long", cell("medications", 1, "bnf_code", "0402010" * 3), where=f"{M}, line 2, column bnf_code",
         reason="at most 15 characters"),
    # -- many problems -------------------------------------------------------------------------
    Case("many-bad-rows", lambda f, t: write_csv(f, "events", [t["events"][0]] + [
        [PEOPLE[0], "2025-01-01", "bad", "", "", ""]] * 150), where=f"{E}, line 2, column snomed_code",
         reason="and 149 more problems"),
    # -- Parquet -------------------------------------------------------------------------------
    Case("parquet-truncated", parquet("patients", data=lambda b: b[: len(b) // 2]), where="patients.parquet",
         reason="not a readable Parquet file"),
    Case("parquet-corrupt-pages", parquet("events", data=corrupt_middle), where="events.parquet",
         reason="cannot be read"),
    Case("parquet-not-parquet", lambda f, t: (f / "patients.csv").rename(f / "patients.parquet"),
         where="patients.parquet", reason="not a readable Parquet file"),
    Case("parquet-empty-file", lambda f, t: ((f / "patients.csv").unlink(), (f / "patients.parquet").write_bytes(b"")),
         where="patients.parquet", reason="not a readable Parquet file"),
    Case("parquet-float-dates", parquet("patients", patients_frame(date_of_birth=pa.array([1.5] * N))),
         where="patients.parquet, column date_of_birth", reason="Parquet type double is not allowed"),
    Case("parquet-struct-column", parquet("patients", patients_frame(
        lsoa=pa.array([{"a": 1}] * N))), where="patients.parquet, column lsoa", reason="is not allowed"),
    Case("parquet-unknown-column", parquet("patients", patients_frame(extra=pa.array(["x"] * N))),
         where="patients.parquet, column extra", reason="unknown column"),
    Case("parquet-value-like-column", parquet("patients", patients_frame(**{"9000079195": pa.array(["x"] * N)})),
         where="patients.parquet, column #8", reason="unknown column"),
    Case("parquet-missing-required", parquet("events", lambda t: events_frame()(t).drop_columns(["date"])),
         where="events.parquet, column date", reason="required column is missing"),
    Case("parquet-nhs-int-check-digit", parquet("patients", patients_frame(
        nhs_number=pa.array([int(p) for p in PEOPLE[:-1]] + [9000158380], pa.int64()))),
         where=f"patients.parquet, line {N + 1}, column nhs_number", reason="check digit is wrong"),
    Case("parquet-nul-in-text", parquet("events", events_frame(unit=pa.array(["mm\x00Hg"] * (2 * N))))
         , where="events.parquet, line 2, column unit", reason="NUL character"),
    Case("parquet-nan-value", parquet("events", events_frame(value=pa.array([float("nan")] * (2 * N))))
         , where="events.parquet, line 2, column value", reason="must be a finite number"),
    Case("parquet-no-rows", parquet("patients", lambda t: patients_frame()(t).slice(0, 0)),
         where=f"{R}, line 2, column nhs_number", reason="not in the patients file"),
    Case("parquet-no-known-columns", parquet("patients", lambda t: pa.table({"a1": [1], "b2": [2]})),
         where="patients.parquet", reason="has no known column names"),
    # -- append mode ---------------------------------------------------------------------------
    Case("append-changed-patient", cell("patients", 1, "sex", "male"), args=("--append",),
         where=f"{P}, line 2, column nhs_number", reason="already loaded with different details"),
    Case("append-changed-end-date", cell("registrations", 1, "end_date", "2024-01-01"), args=("--append",),
         where=f"{R}, line 2, column end_date", reason="different end date"),
    # -- the folder ----------------------------------------------------------------------------
    Case("folder-is-a-file", lambda f, t: None, code=2, reason="is not a folder"),
]
IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS) >= 80, len(IDS)


def _values(folder: Path) -> set[str]:
    """Every distinctive value in the extract's files: NHS numbers, dates, codes (4+ characters)."""
    out: set[str] = set(PEOPLE)
    for table in base_tables().values():
        for row in table[1:]:
            out.update(v for v in row if len(v) >= 4 and any(ch.isdigit() for ch in v))
    for path in folder.iterdir():
        if path.suffix == ".csv" and path.is_file() and not path.is_symlink():
            for line in path.read_bytes().split(b"\n")[1:]:
                for v in line.decode("utf-8", "replace").split(","):
                    v = v.strip('"').strip()
                    if len(v) >= 5 and any(ch.isdigit() for ch in v):
                        out.add(v)
    return out


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def loaded(request, tmp_path_factory):
    """A database loaded with the valid extract, shared by the module (every case leaves it unchanged)."""
    from parity.db import open_database
    from parity.ingest import load_extract

    folder = write_extract(tmp_path_factory.mktemp("base") / "extract")
    if request.param == "duckdb":
        url = str(tmp_path_factory.mktemp("db") / "parity.duckdb")
        with open_database(url) as db:
            load_extract(db, folder)
        yield url, checksum(url)
        return
    with postgres_schema() as url:
        with open_database(url) as db:
            load_extract(db, folder)
        yield url, checksum(url)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_malformed_extract_is_refused_and_changes_nothing(case, loaded, tmp_path, capsys, caplog):
    loaded, before = loaded  # the checksum taken after loading the valid extract: every case must keep it
    folder = tmp_path / "extract"
    tables = base_tables()
    write_extract(folder, tables)
    case.mutate(folder, tables)
    target = tmp_path / "not-a-folder.txt" if case.id == "folder-is-a-file" else folder
    if case.id == "folder-is-a-file":
        target.write_text(PEOPLE[0])

    code, output = run_cli(capsys, "load", str(target), "--database", loaded, "--no-precompute", *case.args)

    assert code == case.code, output
    if case.where:
        assert f"error: extract not loaded: {case.where}" in output, output
    if case.reason:
        assert case.reason in output, output
    assert "unexpected" not in output and "Traceback" not in output, output
    shown = output + caplog.text
    for value in _values(folder) | set(case.secrets):
        assert value not in shown, f"{value!r} from the input appears in the output"
    assert checksum(loaded) == before, "a refused load changed the database"
