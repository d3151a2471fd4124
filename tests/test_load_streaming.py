"""Big Parquet files are read where they lie, not copied into memory (issue 16 target 2), with the same outcome.

``parity.ingest.reader.STAGE_ROWS`` decides which files are read in place; here it is set to 0 so the small test
files take the path England's 56 million events take. A load must then check and write exactly as before,
report a corrupt page as the file's problem, refuse a file that changed between its checks and its write,
and leave the database unchanged whenever it refuses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.db import open_database
from parity.db.rewrite import rewrite
from parity.db.schema import EXTRACT_TABLES
from parity.errors import ValidationError
from parity.ingest import load_extract
from test_ingest import (
    OTHER,
    P1,
    PRACTICES,
    base_extract,
    snapshot,
    validate,
    where,
    write_extract,
    wrong_check_digit,
)


@pytest.fixture
def in_place(monkeypatch):
    """Every Parquet file is read in place, as a big one is."""
    monkeypatch.setattr("parity.ingest.reader.STAGE_ROWS", 0)


@pytest.fixture
def file_db(tmp_path):
    """A DuckDB file: the load goes through ``parity.db.rewrite`` (a copy renamed in), as ``parity load`` does."""
    db = open_database(str(tmp_path / "parity.duckdb"))
    yield db
    db.close()


def extract_rows(db) -> dict[str, list[tuple]]:
    return {t: sorted(db.execute(f"SELECT * FROM {t}"), key=repr) for t in EXTRACT_TABLES}


def bad_extract() -> dict:
    ext = base_extract()
    ext["events"][1]["nhs_number"] = wrong_check_digit(P1)
    ext["events"][2]["nhs_number"] = OTHER  # valid, but not a patient
    ext["events"][3]["snomed_code"] = "123"
    ext["events"][0]["value"] = "nan"
    ext["medications"][1]["dmd_code"] = "12"
    ext["events"].append(dict(ext["events"][0], value="27.5"))
    ext["events"].append(dict(ext["events"][-1]))  # an exact repeat: a warning
    return ext


def test_read_in_place_loads_the_same_rows(any_db, tmp_path, monkeypatch):
    folder = write_extract(tmp_path / "x", base_extract(), "parquet")
    staged = load_extract(any_db, folder, known_practices=PRACTICES)
    expected = extract_rows(any_db)
    monkeypatch.setattr("parity.ingest.reader.STAGE_ROWS", 0)
    streamed = load_extract(any_db, folder, known_practices=PRACTICES)
    assert streamed.counts == staged.counts == {"patients": 4, "registrations": 4, "events": 4, "medications": 2}
    assert extract_rows(any_db) == expected


def test_read_in_place_reports_the_same_problems_and_warnings(tmp_path, monkeypatch):
    folder = write_extract(tmp_path / "x", bad_extract(), "parquet")
    staged = validate(folder)
    monkeypatch.setattr("parity.ingest.reader.STAGE_ROWS", 0)
    streamed = validate(folder)
    assert where(streamed.problems) == where(staged.problems)
    assert [str(w) for w in streamed.warnings] == [str(w) for w in staged.warnings]
    assert streamed.counts == staged.counts
    assert ("events.parquet", 3, "nhs_number", "check digit is wrong") in where(streamed.problems)
    assert ("events.parquet", 4, "nhs_number", "NHS number is not in the patients file") in where(streamed.problems)
    assert any("repeats an earlier row" in str(w) for w in streamed.warnings)


def corrupt_pages(path: Path) -> None:
    """Overwrite the data pages of a Parquet file, keeping its footer (schema and row counts) readable."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    for i in range(8, len(data) - footer - 8, 3):
        data[i] = 0xFF
    path.write_bytes(bytes(data))


def big_events(folder: Path) -> None:
    """Enough event rows that the data pages are worth corrupting (the test extract has four)."""
    table = pq.read_table(folder / "events.parquet")
    pq.write_table(pa.concat_tables([table] * 500), folder / "events.parquet")


def test_a_corrupt_page_of_a_file_read_in_place_is_that_files_problem(file_db, tmp_path, in_place):
    load_extract(file_db, write_extract(tmp_path / "a", base_extract(), "parquet"), known_practices=PRACTICES)
    before = snapshot(file_db)
    folder = write_extract(tmp_path / "b", base_extract(), "parquet")
    big_events(folder)
    corrupt_pages(folder / "events.parquet")
    with pytest.raises(ValidationError) as err:
        load_extract(file_db, folder, known_practices=PRACTICES)
    assert "events.parquet" in str(err.value) and "cannot be read" in str(err.value)
    assert snapshot(file_db) == before


def test_a_file_changed_after_its_checks_is_refused(file_db, tmp_path, in_place, monkeypatch):
    load_extract(file_db, write_extract(tmp_path / "a", base_extract(), "parquet"), known_practices=PRACTICES)
    before = snapshot(file_db)
    folder = write_extract(tmp_path / "b", base_extract(), "parquet")
    checked_but_not_written = bad_extract()  # what is written after the checks passed must not be loaded

    import parity.ingest.load as load_module

    write = load_module._write_duckdb

    def swap_then_write(*args, **kwargs):
        write_extract(tmp_path / "c", checked_but_not_written, "parquet")
        os.replace(tmp_path / "c" / "events.parquet", folder / "events.parquet")
        return write(*args, **kwargs)

    monkeypatch.setattr(load_module, "_write_duckdb", swap_then_write)
    with pytest.raises(ValidationError) as err:
        load_extract(file_db, folder, known_practices=PRACTICES)
    assert "events.parquet" in str(err.value) and "changed while it was being loaded" in str(err.value)
    assert snapshot(file_db) == before


def test_errors_of_a_file_read_in_place_never_echo_values(file_db, tmp_path, in_place):
    ext = bad_extract()
    folder = write_extract(tmp_path / "x", ext, "parquet")
    with pytest.raises(ValidationError) as err:
        load_extract(file_db, folder, known_practices=PRACTICES)
    text = str(err.value) + "".join(str(p) for p in err.value.problems)
    assert "check digit is wrong" in text
    for value in (P1, wrong_check_digit(P1), OTHER):
        assert value not in text


def test_the_rewrite_copy_takes_the_load_memory_limit(file_db):
    default = file_db.execute("SELECT current_setting('memory_limit')")[0][0]
    with rewrite(file_db, memory_limit="300MB") as work:
        limit = work.execute("SELECT current_setting('memory_limit')")[0][0]
    assert limit != default and limit.startswith("286")  # 300 MB is 286.1 MiB
