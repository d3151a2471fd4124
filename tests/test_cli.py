"""The `parity` command end to end, in real subprocesses: synth → load → measure, on both databases."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

AS_OF = "2024-03-31"
PATIENT_COLUMNS = ["nhs_number", "practice_code", "on_register", "bmi", "blood_pressure", "lipids", "glucose",
                   "alcohol", "smoking", "checks_done", "all_six"]


def parity(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extract")
    r = parity("synth", "--out", str(out), "--scale", "icb", "--area", "QNX", "--patients", "400",
               "--seed", "3", "--as-of", AS_OF, "--format", "csv")
    assert r.returncode == 0, r.stderr
    for table in ("patients", "registrations", "events", "medications"):
        assert (out / f"{table}.csv").is_file()
    return out


@pytest.fixture(params=["duckdb", "postgres"])
def database(request, tmp_path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "p.duckdb")
    return request.getfixturevalue("postgres_url")


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_synth_load_measure_round_trip(extract, database):
    r = parity("load", str(extract), "--database", database)
    assert r.returncode == 0, r.stderr
    assert "loaded" in r.stdout

    r = parity("measure", "--database", database, "--as-of", AS_OF, "--patients", "--format", "csv")
    assert r.returncode == 0, r.stderr
    patients = rows(r.stdout)
    assert patients, "synthetic ICB must have patients on the register"
    assert set(PATIENT_COLUMNS) <= set(patients[0])
    assert {f"{c}_date" for c in PATIENT_COLUMNS[3:9]} <= set(patients[0])
    assert {p["all_six"] for p in patients} <= {"true", "false"}
    counted = [p for p in patients if p["in_denominator"] == "true"]

    for level in ("practice", "icb", "england"):
        r = parity("measure", "--database", database, "--as-of", AS_OF, "--level", level, "--format", "csv")
        assert r.returncode == 0, r.stderr
        orgs = rows(r.stdout)
        assert list(orgs[0])[:5] == ["org_code", "org_name", "register", "all_six", "percent"]
        assert sum(int(o["register"]) for o in orgs) == len(counted)
        assert sum(int(o["all_six"]) for o in orgs) == sum(p["all_six"] == "true" for p in counted)
        assert sum(int(o["lipids"]) for o in orgs) == sum(p["lipids"] == "true" for p in counted)

    r = parity("measure", "--database", database, "--as-of", AS_OF, "--level", "region", "--format", "json")
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    # Every output names what it used: measure, date, the structure in force on it, the codelist release.
    assert payload["metadata"]["measure"] == "phsmi" and payload["metadata"]["as_of"] == AS_OF
    assert payload["metadata"]["structure"].startswith("2022-23 structure")
    assert payload["metadata"]["codelists"].startswith("shipped with Parity")
    region = payload["rows"]
    assert region[0]["org_code"] == "Y59"
    expected = round(100 * region[0]["all_six"] / region[0]["register"], 1)
    assert region[0]["percent"] == expected


def test_disclosure_control_flag(extract, tmp_path):
    db = str(tmp_path / "d.duckdb")
    assert parity("load", str(extract), "--database", db).returncode == 0
    r = parity("measure", "--database", db, "--as-of", AS_OF, "--level", "practice", "--format", "csv",
               "--disclosure")
    assert r.returncode == 0, r.stderr
    for org in rows(r.stdout):
        for col in ("register", "all_six", "bmi"):
            if org[col] != "":
                assert int(org[col]) % 5 == 0


def test_errors_are_one_line_without_traceback(extract, tmp_path):
    db = str(tmp_path / "e.duckdb")
    r = parity("measure", "--database", db, "--as-of", "31/03/2024")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "--as-of" in r.stderr

    bad = tmp_path / "bad"
    bad.mkdir()
    for f in extract.iterdir():
        (bad / f.name).write_text(f.read_text())
    lines = (bad / "patients.csv").read_text().splitlines()
    first = lines[1].split(",")
    broken_number = first[0][:-1] + str((int(first[0][-1]) + 1) % 10)
    lines[1] = ",".join([broken_number, *first[1:]])
    (bad / "patients.csv").write_text("\n".join(lines) + "\n")
    r = parity("load", str(bad), "--database", db)
    assert r.returncode == 4
    assert "Traceback" not in r.stderr
    assert "patients.csv" in r.stderr and "line 2" in r.stderr and "nhs_number" in r.stderr
    assert broken_number not in r.stderr and first[0] not in r.stderr


def test_unknown_measure_exits_nonzero(tmp_path):
    r = parity("measure", "--database", str(tmp_path / "x.duckdb"), "--measure", "nope", "--as-of", AS_OF)
    assert r.returncode != 0
    assert "unknown measure" in r.stderr and "Traceback" not in r.stderr


def test_measure_at_every_level_and_over_quarters(extract, database):
    """``--level all`` and ``--quarters N`` (issue 16): one process answers every level and date, and
    each block equals the single-date, single-level command's rows."""
    r = parity("load", str(extract), "--database", database, "--no-precompute")
    assert r.returncode == 0, r.stderr
    r = parity("measure", "--database", database, "--as-of", AS_OF, "--level", "all", "--quarters", "2",
               "--format", "csv")
    assert r.returncode == 0, r.stderr
    stacked = rows(r.stdout)
    # The engine run afresh (--recompute) gives what the stored results give.
    again = parity("measure", "--database", database, "--as-of", AS_OF, "--level", "all", "--quarters", "2",
                   "--format", "csv", "--recompute")
    assert again.returncode == 0, again.stderr
    assert rows(again.stdout) == stacked
    assert list(stacked[0])[:3] == ["as_of", "level", "org_code"]
    assert [k for k in stacked[0] if k == "as_of"] == ["as_of"], "one as_of column: the metadata names the span"
    assert sorted({x["as_of"] for x in stacked}) == ["2023-12-31", "2024-03-31"]
    assert {x["level"] for x in stacked} == {"practice", "pcn", "sub_icb", "icb", "region", "england"}
    for day in ("2023-12-31", "2024-03-31"):
        for level in ("practice", "icb", "england"):
            r = parity("measure", "--database", database, "--as-of", day, "--level", level, "--format", "csv",
                       "--structure", "2022-23")
            assert r.returncode == 0, r.stderr
            single = [(o["org_code"], o["register"], o["all_six"], o["lipids"]) for o in rows(r.stdout)]
            block = [(o["org_code"], o["register"], o["all_six"], o["lipids"]) for o in stacked
                     if o["as_of"] == day and o["level"] == level]
            assert block == single and single, (day, level)
    r = parity("measure", "--database", database, "--as-of", AS_OF, "--level", "all", "--quarters", "2",
               "--format", "json")
    meta = json.loads(r.stdout)["metadata"]
    assert "as_of" not in meta and meta["dates"] == "2 quarter ends, 2023-12-31 to 2024-03-31"
    r = parity("measure", "--database", database, "--as-of", AS_OF, "--patients", "--quarters", "2")
    assert r.returncode == 2 and "--patients" in r.stderr
