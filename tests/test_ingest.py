"""parity.ingest: canonical extract v1 validation (file, line, column, reason) and all-or-nothing loads.

Validation tests use ``validate_extract`` (no database); load tests run on DuckDB and PostgreSQL.
NHS numbers are generated here in the test range (999xxxxxxx) with a valid modulus-11 check digit.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

import duckdb
import nhs_number
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.codes import load_codelist
from parity.db import Database
from parity.db.bulk import arrow_schema
from parity.db.schema import EXTRACT_TABLES
from parity.errors import ConfigurationError, ValidationError
from parity.ingest import (
    MAX_ERRORS,
    AggregatedProblem,
    ExtractValidationError,
    load_extract,
    validate_extract,
)
from parity.ingest.checks import REQUIRED, mod11_sql

PRACTICES = frozenset({"A81001", "A81002"})
BMI_CODE = min(load_codelist("BMIVAL_COD").ids())
SYSBP_CODE = min(load_codelist("SYSBP_COD").ids())


def make_nhs_numbers(n: int, start: int = 0) -> list[str]:
    """``n`` valid NHS numbers in the test range, in order from 999000000x + start."""
    out: list[str] = []
    prefix = 999_000_000 + start
    while len(out) < n:
        digits = [int(c) for c in str(prefix)]
        check = (11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            out.append(f"{prefix}{check}")
        prefix += 1
    return out


def wrong_check_digit(number: str) -> str:
    return number[:9] + str((int(number[9]) + 1) % 10)


NHS = make_nhs_numbers(8)
P1, P2, P3, P4, P5, OTHER = NHS[:6]  # OTHER is valid but never a patient


def base_extract() -> dict[str, list[dict[str, Any]]]:
    """A small valid extract. Patient P4 has no registrations or events (handy to corrupt)."""
    return {
        "patients": [
            {"nhs_number": P1, "date_of_birth": "1970-05-01", "sex": "female", "ethnicity": "A",
             "lsoa": "E01000001", "imd_decile": "3", "date_of_death": None},
            {"nhs_number": P2, "date_of_birth": "1985-11-30", "sex": "male", "ethnicity": "M",
             "lsoa": None, "imd_decile": "10", "date_of_death": None},
            {"nhs_number": P3, "date_of_birth": "1950-01-01", "sex": "unknown", "ethnicity": None,
             "lsoa": None, "imd_decile": None, "date_of_death": "2023-06-30"},
            {"nhs_number": P4, "date_of_birth": "2000-02-29", "sex": "intersex", "ethnicity": "Z",
             "lsoa": "W01000002", "imd_decile": "1", "date_of_death": None},
        ],
        "registrations": [
            {"nhs_number": P1, "practice_code": "A81001", "start_date": "2010-01-01", "end_date": None},
            {"nhs_number": P2, "practice_code": "A81001", "start_date": "2015-01-01", "end_date": "2020-12-31"},
            {"nhs_number": P2, "practice_code": "A81002", "start_date": "2021-01-01", "end_date": None},
            {"nhs_number": P3, "practice_code": "A81002", "start_date": "2001-04-01", "end_date": "2023-06-30"},
        ],
        "events": [
            {"nhs_number": P1, "date": "2023-05-01", "snomed_code": str(BMI_CODE), "value": "27.5",
             "unit": "kg/m2", "recorded_by": "A81001"},
            {"nhs_number": P1, "date": "2023-05-01", "snomed_code": str(SYSBP_CODE), "value": "128",
             "unit": "mmHg", "recorded_by": "RX123"},
            {"nhs_number": P2, "date": "2022-01-15", "snomed_code": "1107481000000106", "value": None,
             "unit": None, "recorded_by": None},
            {"nhs_number": P3, "date": "2019-03-03", "snomed_code": "69322001", "value": None,
             "unit": None, "recorded_by": "A81002"},
        ],
        "medications": [
            {"nhs_number": P2, "date": "2023-02-01", "dmd_code": "39689711000001103", "bnf_code": "0402010J0"},
            {"nhs_number": P1, "date": "2023-03-01", "dmd_code": "320058008", "bnf_code": None},
        ],
    }


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r[c] for c in columns])


def _typed(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of text values converted to the database column types (dates, integers, doubles)."""
    schema = arrow_schema(table)
    data = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_date(f.type):
            values = [None if v is None else dt.date.fromisoformat(v) for v in values]
        elif pa.types.is_integer(f.type):
            values = [None if v is None else int(v) for v in values]
        elif pa.types.is_floating(f.type):
            values = [None if v is None else float(v) for v in values]
        data[f.name] = pa.array(values, f.type)
    return pa.table(data)


def write_extract(folder: Path, ext: dict[str, list[dict[str, Any]]], fmt: str = "csv") -> Path:
    """Write an extract; fmt is "csv", "parquet" (database types) or "parquet-text" (all strings)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in ext.items():
        if fmt == "csv":
            write_csv(folder / f"{table}.csv", rows, EXTRACT_TABLES[table].column_names)
        elif fmt == "parquet":
            pq.write_table(_typed(table, rows), folder / f"{table}.parquet")
        else:
            cols = EXTRACT_TABLES[table].column_names
            pq.write_table(pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols}),
                           folder / f"{table}.parquet")
    return folder


def where(problems: list) -> list[tuple]:
    return [(p.file, p.line, p.column, p.reason) for p in problems]


def validate(folder: Path):
    return validate_extract(folder, known_practices=PRACTICES)


def snapshot(db: Database) -> dict[str, list[tuple]]:
    return {t: sorted(db.execute(f"SELECT * FROM {t}"), key=repr)
            for t in (*EXTRACT_TABLES, "loads", "practices")}


# -- NHS numbers -----------------------------------------------------------------------------------

def test_generated_nhs_numbers_are_valid_test_range_numbers():
    assert all(nhs_number.is_valid(n) and n.startswith("999") for n in NHS)
    assert not nhs_number.is_valid(wrong_check_digit(P1))


def test_vectorised_mod11_matches_the_nhs_number_package():
    # The package's is_valid also checks Scottish CHI dates; the extract rule is the check digit alone.
    rng = random.Random(7)
    numbers = [f"{rng.randrange(10**9, 10**10)}" for _ in range(5_000)] + NHS
    con = duckdb.connect()
    con.register("n", pa.table({"v": numbers}))
    got = dict(con.execute(f"SELECT v, {mod11_sql('v')} FROM n").fetchall())
    expected = {v: nhs_number.calculate_checksum(v[:9]) == int(v[9]) for v in numbers}
    assert all(nhs_number.is_valid(v) for v in numbers if v.startswith("9") and expected[v])
    assert got == expected
    assert sum(expected.values()) > 300  # both outcomes well represented


# -- happy paths -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet", "parquet-text"])
def test_valid_extract_has_no_problems(tmp_path, fmt):
    report = validate(write_extract(tmp_path, base_extract(), fmt))
    assert report.ok and report.problems == [] and report.error_count == 0
    assert report.counts == {"patients": 4, "registrations": 4, "events": 4, "medications": 2}
    assert report.warnings == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_load_writes_typed_rows_and_records_the_load(any_db, tmp_path, fmt):
    folder = write_extract(tmp_path / "x", base_extract(), fmt)
    result = load_extract(any_db, folder, known_practices=PRACTICES)
    assert result.counts == {"patients": 4, "registrations": 4, "events": 4, "medications": 2}
    assert result.warnings == [] and result.mode == "replace"
    rows = any_db.execute("SELECT nhs_number, date, snomed_code, value, unit, recorded_by FROM events "
                          "ORDER BY nhs_number, snomed_code")
    assert rows[0] == (P1, dt.date(2023, 5, 1), min(BMI_CODE, SYSBP_CODE),
                       27.5 if BMI_CODE < SYSBP_CODE else 128.0,
                       "kg/m2" if BMI_CODE < SYSBP_CODE else "mmHg",
                       "A81001" if BMI_CODE < SYSBP_CODE else "RX123")
    assert (P2, dt.date(2022, 1, 15), 1107481000000106, None, None, None) in rows
    pats = {r[0]: r[1:] for r in any_db.execute(
        "SELECT nhs_number, date_of_birth, sex, ethnicity, lsoa, imd_decile, date_of_death FROM patients")}
    assert pats[P3] == (dt.date(1950, 1, 1), "unknown", None, None, None, dt.date(2023, 6, 30))
    assert pats[P1][4] == 3
    meds = any_db.execute("SELECT dmd_code, bnf_code FROM medications ORDER BY dmd_code")
    assert meds == [(320058008, None), (39689711000001103, "0402010J0")]
    loads = any_db.execute("SELECT load_id, mode, patients, registrations, events, medications, warnings, "
                           "source FROM loads")
    assert loads == [(result.load_id, "replace", 4, 4, 4, 2, 0, str(folder.resolve()))]
    assert any_db.count("practices") > 0  # filled from parity.orgs on first load


def test_missing_optional_columns_and_file_are_fine(duckdb_db, tmp_path):
    ext = base_extract()
    del ext["medications"]
    for p in ext["patients"]:
        for c in ("ethnicity", "lsoa", "imd_decile", "date_of_death"):
            del p[c]
    for e in ext["events"]:
        for c in ("value", "unit", "recorded_by"):
            del e[c]
    folder = tmp_path / "x"
    folder.mkdir()
    for table, rows in ext.items():
        write_csv(folder / f"{table}.csv", rows)
    (folder / "README.txt").write_text("ignored")
    (folder / "notes.csv").write_text("anything,at all\n1\n")
    result = load_extract(duckdb_db, folder, known_practices=PRACTICES)
    assert result.counts["medications"] == 0 and result.counts["events"] == 4
    assert duckdb_db.execute("SELECT count(*) FROM patients WHERE lsoa IS NULL AND imd_decile IS NULL")[0][0] == 4


def test_default_known_practices_come_from_parity_orgs(tmp_path):
    from parity.orgs import all_practice_codes

    assert {"A81001", "A81002"} <= all_practice_codes()
    report = validate_extract(write_extract(tmp_path, base_extract()))
    assert report.ok


# -- one error of each kind ------------------------------------------------------------------------

CASES = [
    ("patients", 3, "nhs_number", "123456789", "must be 10 digits"),
    ("patients", 3, "nhs_number", wrong_check_digit(P4), "check digit is wrong"),
    ("patients", 3, "nhs_number", None, REQUIRED),
    ("patients", 3, "date_of_birth", "1980-02-30", "is not a real date"),
    ("patients", 3, "date_of_birth", "03/04/1980", "must be a date written YYYY-MM-DD"),
    ("patients", 3, "date_of_birth", "1980-1-5", "must be a date written YYYY-MM-DD"),
    ("patients", 3, "date_of_birth", None, REQUIRED),
    ("patients", 3, "sex", "M", "must be one of: male, female, intersex, unknown"),
    ("patients", 3, "ethnicity", "I", "must be an NHS ethnic category letter: A-H, J-N, P, R, S or Z"),
    ("patients", 3, "imd_decile", "11", "must be a whole number from 1 to 10"),
    ("patients", 3, "imd_decile", "two", "must be a whole number from 1 to 10"),
    ("patients", 3, "lsoa", "E0100000123", "must be at most 9 characters"),
    ("patients", 3, "date_of_death", "2020-00-10", "is not a real date"),
    ("registrations", 1, "practice_code", "Y99999", "not a known GP practice code"),
    ("registrations", 1, "practice_code", "A81-001", "must be an ODS code: letters and digits, at most 10"),
    ("registrations", 1, "end_date", "2014-12-31", "end date is before start date"),
    ("registrations", 1, "nhs_number", OTHER, "NHS number is not in the patients file"),
    ("events", 2, "nhs_number", OTHER, "NHS number is not in the patients file"),
    ("events", 2, "nhs_number", wrong_check_digit(P2), "check digit is wrong"),
    ("events", 2, "nhs_number", "99900000", "must be 10 digits"),
    ("events", 2, "date", "2020-13-01", "is not a real date"),
    ("events", 2, "snomed_code", "12ab45", "must be a SNOMED CT code: 6 to 18 digits"),
    ("events", 2, "snomed_code", "12345", "must be a SNOMED CT code: 6 to 18 digits"),
    ("events", 2, "snomed_code", "1" * 19, "must be a SNOMED CT code: 6 to 18 digits"),
    ("events", 2, "value", "high", "must be a number"),
    ("events", 2, "value", "1_000", "must be a number"),
    ("events", 2, "value", "1e999", "number is out of range"),
    ("events", 2, "unit", "x" * 33, "must be at most 32 characters"),
    ("events", 2, "recorded_by", "A 1", "must be an ODS code: letters and digits, at most 10"),
    ("medications", 0, "dmd_code", "abc", "must be a dm+d code: 6 to 18 digits"),
    ("medications", 0, "bnf_code", "0" * 16, "must be at most 15 characters"),
    ("medications", 1, "nhs_number", OTHER, "NHS number is not in the patients file"),
]


@pytest.mark.parametrize(("table", "row", "column", "value", "reason"), CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[4][:20]}" for c in CASES])
@pytest.mark.parametrize("fmt", ["csv", "parquet-text"])
def test_each_bad_value_is_named_by_file_line_column_and_reason(tmp_path, fmt, table, row, column, value,
                                                                 reason):
    ext = base_extract()
    ext[table][row][column] = value
    report = validate(write_extract(tmp_path, ext, fmt))
    suffix = "csv" if fmt == "csv" else "parquet"
    assert where(report.problems) == [(f"{table}.{suffix}", row + 2, column, reason)]
    assert report.error_count == 1


def test_load_raises_validation_error_with_problems(duckdb_db, tmp_path):
    ext = base_extract()
    ext["events"][3]["date"] = "2019-02-29"
    folder = write_extract(tmp_path, ext)
    with pytest.raises(ValidationError) as info:
        load_extract(duckdb_db, folder, known_practices=PRACTICES)
    err = info.value
    assert isinstance(err, ExtractValidationError)
    assert where(err.problems) == [("events.csv", 5, "date", "is not a real date")]
    assert str(err) == "extract not loaded: events.csv, line 5, column date: is not a real date"


def test_typed_parquet_values_are_checked_too(tmp_path):
    ext = base_extract()
    ext["events"][1]["snomed_code"] = "123"
    ext["patients"][3]["imd_decile"] = "0"
    ext["events"][0]["value"] = "nan"
    report = validate(write_extract(tmp_path, ext, "parquet"))
    assert where(report.problems) == [
        ("patients.parquet", 5, "imd_decile", "must be a whole number from 1 to 10"),
        ("events.parquet", 2, "value", "must be a finite number"),
        ("events.parquet", 3, "snomed_code", "must be a SNOMED CT code: 6 to 18 digits"),
    ]


def test_parquet_column_of_the_wrong_type(tmp_path):
    folder = write_extract(tmp_path, base_extract(), "parquet")
    t = pq.read_table(folder / "events.parquet")
    t = t.set_column(1, "date", t.column("date").cast(pa.timestamp("us")))
    pq.write_table(t, folder / "events.parquet")
    report = validate(folder)
    assert where(report.problems) == [
        ("events.parquet", None, "date", "Parquet type timestamp[us] is not allowed here: use text or date")]


def test_duplicate_patients_name_both_lines(tmp_path):
    ext = base_extract()
    twin = copy.deepcopy(ext["patients"][1])
    twin["sex"] = "female"
    ext["patients"].append(twin)
    report = validate(write_extract(tmp_path, ext))
    assert where(report.problems) == [
        ("patients.csv", 6, "nhs_number", "duplicate patient: same NHS number as line 3")]


def test_duplicate_registrations_name_both_lines(tmp_path):
    ext = base_extract()
    ext["registrations"].insert(1, copy.deepcopy(ext["registrations"][2]))
    report = validate(write_extract(tmp_path, ext))
    assert where(report.problems) == [
        ("registrations.csv", 5, "start_date",
         "duplicate registration: same NHS number, practice and start date as line 3")]


def test_many_problems_are_capped_but_counted(tmp_path):
    ext = base_extract()
    ext["events"] = [dict(ext["events"][0], snomed_code="bad") for _ in range(150)]
    ext["patients"][0]["sex"] = "?"
    report = validate(write_extract(tmp_path, ext))
    assert report.error_count == 151
    assert len(report.problems) == MAX_ERRORS
    assert report.problems[0].file == "patients.csv"
    assert [p.line for p in report.problems[1:4]] == [2, 3, 4]
    assert report.summary() == ("extract not loaded: patients.csv, line 2, column sex: must be one of: "
                                "male, female, intersex, unknown (and 150 more problems)")


# -- structure -------------------------------------------------------------------------------------

def test_unknown_and_missing_columns(tmp_path):
    ext = base_extract()
    write_extract(tmp_path, ext)
    rows = [{("nhs_no" if k == "nhs_number" else k): v for k, v in r.items()} for r in ext["registrations"]]
    for r in rows:
        r["colour"] = "blue"
    write_csv(tmp_path / "registrations.csv", rows)
    report = validate(tmp_path)
    expected = "unknown column (expected: nhs_number, practice_code, start_date, end_date)"
    assert where(report.problems) == [
        ("registrations.csv", 1, "nhs_no", expected),
        ("registrations.csv", 1, "colour", expected),
        ("registrations.csv", 1, "nhs_number", "required column is missing"),
    ]


def test_files_missing_doubled_or_empty(tmp_path):
    ext = base_extract()
    write_extract(tmp_path, {"patients": ext["patients"], "registrations": ext["registrations"]})
    write_extract(tmp_path, {"registrations": ext["registrations"]}, "parquet")
    (tmp_path / "medications.csv").write_text("")
    report = validate(tmp_path)
    assert where(report.problems) == [
        ("registrations.csv", None, None,
         "registrations.csv and registrations.parquet are both present: keep one file per table"),
        ("events", None, None, "file is missing: expected events.csv or events.parquet"),
        ("medications.csv", 1, None, "file is empty: expected a header row of column names"),
    ]


def test_missing_folder_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError):
        validate(tmp_path / "nope")


def test_malformed_csv_rows_and_blank_lines_keep_line_numbers_right(tmp_path):
    ext = base_extract()
    write_extract(tmp_path, ext)
    good = f"{P1},2023-01-01,{BMI_CODE},30,kg/m2,A81001"
    lines = ["nhs_number,date,snomed_code,value,unit,recorded_by",  # 1
             good,                                                  # 2
             "",                                                    # 3 blank: skipped
             f"{P1},2023-01-01,{BMI_CODE}",                         # 4 too few fields
             good.replace("2023-01-01", "2023-01-02"),              # 5
             good + ",extra",                                       # 6 too many fields
             "",                                                    # 7
             "",                                                    # 8
             good.replace(str(BMI_CODE), "x1"),                     # 9 bad code
             good.replace("2023-01-01", "2023-01-03")]              # 10
    (tmp_path / "events.csv").write_text("\r\n".join(lines) + "\r\n")
    report = validate(tmp_path)
    assert where(report.problems) == [
        ("events.csv", 4, None, "too few fields: expected 6"),
        ("events.csv", 6, None, "too many fields: expected 6"),
        ("events.csv", 9, "snomed_code", "must be a SNOMED CT code: 6 to 18 digits"),
    ]
    assert report.counts["events"] == 4  # lines 2, 5, 9 and 10


def test_blank_lines_alone_shift_line_numbers(tmp_path):
    write_extract(tmp_path, base_extract())
    text = (tmp_path / "events.csv").read_text().splitlines()
    text.insert(2, "")
    text[4] = text[4].replace("2022-01-15", "2022-02-30")  # third data row, now on line 5
    (tmp_path / "events.csv").write_text("\n".join(text) + "\n\n")
    report = validate(tmp_path)
    assert where(report.problems) == [("events.csv", 5, "date", "is not a real date")]


def test_invalid_utf8_is_reported_with_its_line(tmp_path):
    write_extract(tmp_path, base_extract())
    data = (tmp_path / "events.csv").read_bytes().replace(b"kg/m2", b"kg/m\xff")
    (tmp_path / "events.csv").write_bytes(data)
    report = validate(tmp_path)
    assert where(report.problems) == [("events.csv", 2, None, "is not valid UTF-8")]


def test_a_quoted_field_and_a_byte_order_mark_are_fine(tmp_path):
    ext = base_extract()
    ext["events"][0]["unit"] = 'kg, "per" m2'
    write_extract(tmp_path, ext)
    path = tmp_path / "patients.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert validate(tmp_path).ok


# -- warnings --------------------------------------------------------------------------------------

def test_implausible_values_are_aggregated_warnings(tmp_path):
    ext = base_extract()
    ext["patients"][3]["date_of_birth"] = "1890-01-01"
    ext["patients"][0]["date_of_death"] = "2999-01-01"
    e0 = ext["events"][0]
    ext["events"] += [
        dict(e0, value="150"),                     # line 6: BMI out of range
        dict(e0, date="2999-01-01"),               # line 7: future
        dict(e0, nhs_number=P3, date="1949-12-31"),  # line 8: before birth
        dict(e0, nhs_number=P3, date="2023-07-01"),  # line 9: after death
        dict(e0),                                  # line 10: exact repeat of line 2
    ]
    ext["events"] += [dict(e0, value=str(100 + i), date=f"2020-01-{i + 1:02d}") for i in range(7)]
    report = validate(write_extract(tmp_path, ext))
    assert report.ok
    got = {(w.file, w.column, w.reason): (w.count, w.lines) for w in report.warnings}
    assert got == {
        ("patients.csv", "date_of_birth", "date of birth is more than 115 years ago"): (1, [5]),
        ("patients.csv", "date_of_death", "date of death is in the future"): (1, [2]),
        ("events.csv", "date", "date is in the future"): (1, [7]),
        ("events.csv", "date", "date is before the patient's date of birth"): (1, [8]),
        ("events.csv", "date", "date is after the patient's date of death"): (1, [9]),
        ("events.csv", "value", "BMI value outside 10-90"): (8, [6, 11, 12, 13, 14]),
        ("events.csv", None, "row repeats an earlier row exactly (kept)"): (1, [10]),
    }
    bmi = next(w for w in report.warnings if w.reason.startswith("BMI"))
    assert isinstance(bmi, AggregatedProblem) and bmi.severity == "warning"
    assert str(bmi) == "events.csv, column value: BMI value outside 10-90 (8 rows; lines 6, 11, 12, 13, 14, …)"


def test_warnings_do_not_block_a_load_and_repeats_are_kept(duckdb_db, tmp_path):
    ext = base_extract()
    ext["events"].append(dict(ext["events"][0]))
    ext["events"].append(dict(ext["events"][1], value="400"))
    result = load_extract(duckdb_db, write_extract(tmp_path, ext), known_practices=PRACTICES)
    assert result.counts["events"] == 6
    assert {w.reason for w in result.warnings} == {"row repeats an earlier row exactly (kept)",
                                                  "systolic blood pressure value outside 60-260 mmHg"}
    assert duckdb_db.execute("SELECT warnings FROM loads")[0][0] == 2


# -- no patient data in messages --------------------------------------------------------------------

def test_no_patient_data_in_any_message(tmp_path, capsys):
    ext = base_extract()
    bad_nhs = wrong_check_digit(P4)
    ext["patients"][3]["nhs_number"] = bad_nhs
    ext["patients"].append(dict(ext["patients"][0], date_of_birth="1899-03-07"))
    ext["patients"][1]["date_of_birth"] = "1985-11-31"
    ext["registrations"][0]["nhs_number"] = OTHER
    ext["events"].append(dict(ext["events"][0], nhs_number=P5, value="912.25"))
    ext["events"].append(dict(ext["events"][0], value="912.25"))
    folder = write_extract(tmp_path, ext)
    report = validate_extract(folder, known_practices=PRACTICES, progress=True)
    assert report.error_count >= 5 and report.warnings
    texts = [str(p) for p in report.problems + report.warnings] + [report.summary()]
    texts += [repr(p) for p in report.problems]
    with pytest.raises(ValidationError) as info:
        report.raise_for_errors()
    texts.append(str(info.value))
    texts.append(capsys.readouterr().err)
    secrets = [*NHS, bad_nhs, "1899-03-07", "1985-11-31", "1970-05-01", "912.25", "912"]
    for text in texts:
        for secret in secrets:
            assert secret not in text


# -- loading: all or nothing, replace and append ----------------------------------------------------

def test_failed_validation_leaves_the_database_unchanged(any_db, tmp_path):
    load_extract(any_db, write_extract(tmp_path / "a", base_extract()), known_practices=PRACTICES)
    before = snapshot(any_db)
    ext = base_extract()
    ext["patients"].append(dict(ext["patients"][0], nhs_number=P5))
    ext["events"][-1]["snomed_code"] = "bad"  # the last row of the last file checked
    for mode in ("replace", "append"):
        with pytest.raises(ValidationError):
            load_extract(any_db, write_extract(tmp_path / "b", ext), mode=mode, known_practices=PRACTICES)
    assert snapshot(any_db) == before


def test_failure_while_writing_rolls_everything_back(any_db, tmp_path, monkeypatch):
    load_extract(any_db, write_extract(tmp_path / "a", base_extract()), known_practices=PRACTICES)
    before = snapshot(any_db)
    ext = base_extract()
    ext["events"] = ext["events"][:2]

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    # The load record is written last, after every table: fail there.
    monkeypatch.setattr("parity.ingest.load.insert_rows", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        load_extract(any_db, write_extract(tmp_path / "b", ext), known_practices=PRACTICES)
    assert snapshot(any_db) == before
    monkeypatch.undo()
    result = load_extract(any_db, tmp_path / "b", known_practices=PRACTICES)  # still usable
    assert result.counts["events"] == 2


def test_replace_then_append(any_db, tmp_path):
    first = load_extract(any_db, write_extract(tmp_path / "a", base_extract()), known_practices=PRACTICES)
    base = base_extract()
    more = {
        "patients": [base["patients"][0],  # identical to a stored patient: skipped
                     {"nhs_number": P5, "date_of_birth": "1990-01-01", "sex": "male"}],
        "registrations": [base["registrations"][0],
                          {"nhs_number": P5, "practice_code": "A81002", "start_date": "2020-01-01"}],
        "events": [base["events"][0],  # already stored: skipped
                   {"nhs_number": P5, "date": "2023-01-01", "snomed_code": "69322001"},
                   {"nhs_number": P5, "date": "2023-01-01", "snomed_code": "69322001"},  # repeat: kept
                   {"nhs_number": P4, "date": "2023-01-02", "snomed_code": "69322001"}],  # stored patient
    }
    second = load_extract(any_db, write_extract(tmp_path / "b", more), mode="append",
                          known_practices=PRACTICES)
    assert second.counts == {"patients": 1, "registrations": 1, "events": 3, "medications": 0}
    assert second.skipped == {"patients": 1, "registrations": 1, "events": 1, "medications": 0}
    assert [any_db.count(t) for t in EXTRACT_TABLES] == [5, 5, 7, 2]
    assert any_db.execute("SELECT count(*) FROM events WHERE nhs_number = ?", [P5])[0][0] == 2
    loads = any_db.execute("SELECT load_id, mode, events FROM loads ORDER BY loaded_at")
    assert loads == [(first.load_id, "replace", 4), (second.load_id, "append", 3)]

    # Appending a stored patient with different details, or a changed registration, is an error.
    clash = copy.deepcopy(more)
    clash["patients"][0]["date_of_birth"] = "1970-05-02"
    clash["registrations"][0]["end_date"] = "2022-01-01"
    before = snapshot(any_db)
    with pytest.raises(ValidationError) as info:
        load_extract(any_db, write_extract(tmp_path / "c", clash), mode="append", known_practices=PRACTICES)
    assert where(info.value.problems) == [
        ("patients.csv", 2, "nhs_number", "a patient with this NHS number is already loaded with different "
                                          "details (load with mode 'replace' to change patients)"),
        ("registrations.csv", 2, "end_date", "this registration (same NHS number, practice and start date) "
                                             "is already loaded with a different end date"),
    ]
    assert snapshot(any_db) == before

    # Replace: only the new extract remains (it must stand alone: P4 is not in it).
    more["events"].pop()
    third = load_extract(any_db, write_extract(tmp_path / "d", more), mode="replace",
                         known_practices=PRACTICES)
    assert third.counts == {"patients": 2, "registrations": 2, "events": 3, "medications": 0}
    assert [any_db.count(t) for t in EXTRACT_TABLES] == [2, 2, 3, 0]
    assert any_db.count("loads") == 3


def test_append_refers_to_stored_patients_but_not_unknown_ones(duckdb_db, tmp_path):
    load_extract(duckdb_db, write_extract(tmp_path / "a", base_extract()), known_practices=PRACTICES)
    ext = {"patients": [], "registrations": [],
           "events": [{"nhs_number": P4, "date": "2023-01-02", "snomed_code": "69322001"},
                      {"nhs_number": OTHER, "date": "2023-01-02", "snomed_code": "69322001"}]}
    folder = tmp_path / "b"
    folder.mkdir()
    for table, rows in ext.items():
        write_csv(folder / f"{table}.csv", rows, EXTRACT_TABLES[table].column_names)
    with pytest.raises(ValidationError) as info:
        load_extract(duckdb_db, folder, mode="append", known_practices=PRACTICES)
    assert where(info.value.problems) == [
        ("events.csv", 3, "nhs_number", "NHS number is not in the patients file or already loaded")]


def test_bad_mode(duckdb_db, tmp_path):
    with pytest.raises(ConfigurationError):
        load_extract(duckdb_db, tmp_path, mode="merge")


def test_progress_goes_to_stderr_without_patient_data(duckdb_db, tmp_path, capsys):
    load_extract(duckdb_db, write_extract(tmp_path, base_extract()), known_practices=PRACTICES, progress=True)
    captured = capsys.readouterr()
    assert "write events: 4 rows" in captured.err
    assert "read patients.csv: 4 rows" in captured.err
    assert captured.out == ""
    assert not any(n in captured.err for n in NHS)


def test_staging_objects_are_dropped(duckdb_db, tmp_path):
    load_extract(duckdb_db, write_extract(tmp_path, base_extract()), known_practices=PRACTICES)
    left = duckdb_db.execute("SELECT table_name FROM information_schema.tables "
                             "WHERE table_name LIKE '_parity_ingest%'")
    assert left == []


@pytest.mark.parametrize("chunk", [5, 64, 1 << 24])
def test_line_numbers_survive_many_blank_and_malformed_lines(tmp_path, monkeypatch, chunk):
    import parity.ingest.reader as reader

    monkeypatch.setattr(reader, "_CHUNK", chunk)
    write_extract(tmp_path, base_extract())
    rng = random.Random(3)
    lines = ["nhs_number,date,snomed_code,value,unit,recorded_by"]
    expected_bad, expected_malformed = [], []
    for i in range(400):
        roll = rng.random()
        if roll < 0.1:
            lines.append("")
            continue
        row = f"{P1},2023-01-{1 + i % 28:02d},{BMI_CODE},{20 + i % 50},kg/m2,A81001"
        if roll < 0.2:
            row += ",x"
            expected_malformed.append(len(lines) + 1)
        elif roll < 0.25:
            row = row.replace(str(BMI_CODE), "bad")
            expected_bad.append(len(lines) + 1)
        lines.append(row)
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    report = validate(tmp_path)
    assert [p.line for p in report.problems if p.column is None] == expected_malformed
    assert [p.line for p in report.problems if p.column == "snomed_code"] == expected_bad
    assert report.error_count == len(expected_malformed) + len(expected_bad)


def test_append_into_an_empty_database(any_db, tmp_path):
    result = load_extract(any_db, write_extract(tmp_path, base_extract()), mode="append",
                          known_practices=PRACTICES)
    assert result.counts == {"patients": 4, "registrations": 4, "events": 4, "medications": 2}
    assert result.skipped == dict.fromkeys(EXTRACT_TABLES, 0)
