"""Programme reporting on the real published series (M7): trajectories, the highlight report (HTML, and PDF read back
with ``pdftotext``) and the ``parity programme`` commands."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import need
from parity.db import Database, open_database
from parity.reports.highlight import build_highlight, render_highlight_html, render_highlight_pdf
from parity.reports.initiatives import Initiative, record_initiative
from parity.reports.published import packaged_series
from parity.reports.trajectory import build, gap
from parity.rules.standards import RAG_RULE, rag, trajectory_status

XLSX = packaged_series()  # byte-identical to shared/data/published (tests/test_published.py)


@pytest.fixture(scope="module")
def published_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the imported published series (imported once for the module)."""
    if not XLSX.exists():
        need(f"{XLSX} is missing")
    from parity.reports.published import import_published

    path = tmp_path_factory.mktemp("published") / "parity.duckdb"
    with open_database(str(path)) as db:
        db.ensure_schema()
        import_published(db, XLSX)
    return path


@pytest.fixture
def db(published_file: Path) -> Iterator[Database]:
    with open_database(str(published_file)) as d:
        yield d


def test_one_rag_rule_against_the_standards() -> None:
    """Issue 11: one standard, one colour: green from 75%, amber from 60%, red below, grey without a rate."""
    assert rag(75.0) == "green" and rag(100.0) == "green"
    assert rag(74.9) == "amber" and rag(60.0) == "amber"
    assert rag(59.9) == "red" and rag(0.0) == "red"
    assert rag(None) == "grey" and rag(float("nan")) == "grey"
    assert "75%" in RAG_RULE and "60%" in RAG_RULE


def test_trajectory_status_is_not_a_colour() -> None:
    assert trajectory_status(100, 100) == "on track" and trajectory_status(101, 100) == "on track"
    assert trajectory_status(99, 100) == "behind"
    assert trajectory_status(None, 100) == "no data"


def test_region_trajectory_on_real_data(db: Database) -> None:
    regions = build(db, "2022-23-Q4", 0.75, date(2024, 3, 31), "region")
    assert len(regions) == 7 and regions["months"].iloc[0] == 12
    for r in regions.to_dict(orient="records"):
        assert (r["target_count"], r["additional_patients"]) == gap(r["register"], r["all_six"], 0.75)
    y59 = regions.set_index("org_code").loc["Y59"]
    for method in ("by_register", "to_equal_rate", "blend"):
        icbs = build(db, "2022-23-Q4", 0.75, date(2024, 3, 31), "icb", "Y59", method)
        assert len(icbs) >= 2 and set(icbs["parent_code"]) == {"Y59"}
        assert int(icbs["additional_patients"].sum()) == int(y59["additional_patients"])
    one = build(db, "2022-23-Q4", 0.75, date(2024, 3, 31), "icb", icbs["org_code"].iloc[0], "blend")
    assert len(one) == 1 and one.iloc[0]["additional_patients"] == icbs.iloc[0]["additional_patients"]


def test_highlight_html_and_pdf(db: Database) -> None:
    record_initiative(db, Initiative("icb", "QKS", "Kent outreach calls", "Sam Owner", "practice",
                                     date(2023, 4, 1), None, "low", "high", 40, "active"), "tester")
    record_initiative(db, Initiative("icb", "QKS", "Shelved idea", "Nobody", "icb", date(2023, 4, 1), None, "low",
                                     "low", 5, "stopped"), "tester")
    report = build_highlight(db, "Y59", produced=date(2026, 11, 22))
    assert report.period == "2023-24-Q4" and report.baseline == "2022-23-Q4" and report.by == date(2024, 3, 31)
    assert len(report.trend) == 8 and report.trend[-1]["period"] == "2023-24-Q4"
    # The 2023-24 report is in the structure in force then (2022-23: the six South East ICBs of 2021).
    assert sorted(i["org_code"] for i in report.icbs) == ["QKS", "QNQ", "QNX", "QRL", "QU9", "QXU"]
    assert report.structure.startswith("2022-23")
    for i in report.icbs:
        assert i["rag"] == rag(i["percent"]), i["org_code"]
        assert i["trajectory"] == trajectory_status(i["all_six"], i["expected"])
    well_behind = [i for i in report.icbs if i["all_six"] is not None and i["all_six"] < 0.95 * i["expected"]]
    assert all(i in report.exceptions for i in well_behind)
    assert [x["title"] for x in report.initiatives] == ["Kent outreach calls"]
    html = render_highlight_html(report)
    assert "South East" in html and "Kent outreach calls" in html and "Shelved idea" not in html
    pdf = render_highlight_pdf(report)
    assert pdf.startswith(b"%PDF")
    if not shutil.which("pdftotext"):
        need("pdftotext is not installed (apt-get install poppler-utils)")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    text = " ".join(text.decode().split())
    assert "South East (Y59)" in text
    assert "73,995" in text and "43,960" in text and "59.4%" in text and "on the SMI register" in text
    assert "60% standard: not met" in text and "75% standard: not met" in text
    assert "2022-23-Q1" in text and "2023-24-Q4" in text
    assert "RAG rule. Green: all six checks for 75% or more of the register" in text
    assert "2022-23 structure" in text
    assert "Exceptions" in text and "Kent outreach" in text and "Sam" in text


def test_programme_cli(published_file: Path, tmp_path: Path) -> None:
    from parity.reports.programme_cli import programme_app

    runner = CliRunner()
    base = ["--database", str(published_file)]
    r = runner.invoke(programme_app, ["trajectory", *base, "--baseline", "2022-23-Q4", "--target", "0.75",
                                      "--by", "2024-03-31", "--level", "icb", "--org", "Y59", "--method",
                                      "to_equal_rate", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert list(rows[0]) == ["org_code", "register", "all_six", "target_count", "additional_patients", "per_month"]
    r = runner.invoke(programme_app, ["trajectory", *base, "--baseline", "2022-23-Q4", "--target", "0.75",
                                      "--format", "csv"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == \
        "org_code,register,all_six,target_count,additional_patients,per_month"
    r = runner.invoke(programme_app, ["initiatives", "add", *base, "--area", "QRL", "--title", "Clinic days",
                                      "--owner", "A Lead", "--start", "2023-06-01", "--extra-per-month", "12",
                                      "--status", "active"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(programme_app, ["initiatives", "list", *base, "--area", "QRL", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["title"] == "Clinic days"
    out = tmp_path / "report.html"
    r = runner.invoke(programme_app, ["highlight", *base, "--region", "Y59", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "Clinic days" in out.read_text()


def test_highlight_in_the_2026_structure(db: Database) -> None:
    """The same quarter restated in the 2026 structure: the South East's ICBs after the mergers."""
    report = build_highlight(db, "Y59", structure="2026", produced=date(2026, 11, 22))
    codes = sorted(i["org_code"] for i in report.icbs)
    assert "QNQ" not in codes and "QU9" not in codes and "QKS" in codes
    assert len(codes) == 4
    assert report.structure.startswith("2026")
    assert report.headline["register"] == 73995  # the region's total does not depend on the structure
