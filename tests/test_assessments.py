"""Assessments (M10): the two frameworks as data, validation (all or nothing), history and totals, the latest
assessment per area, append-only storage, and the ``parity assessments`` commands; on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from parity.db import Database, open_database
from parity.errors import ConfigurationError
from parity.reports.assessments import (
    ensure_assessments_schema,
    history,
    history_frame,
    latest,
    latest_per_area,
    normalise_area,
    record_assessment,
    summary,
)
from parity.reports.assessments_cli import assessments_app
from parity.rules.assessments import get_framework, load_frameworks

POE_IDS = ["information_systems", "vision_and_plan", "physical_health_in_contracts", "smoking_cessation",
           "mental_health_organisation", "community_services", "acute_services_strategy", "acute_workforce",
           "primary_care", "outcome_based_care"]


def eds(a: int, b: int, c: int, d: int) -> dict[str, int]:
    return {"1A": a, "1B": b, "1C": c, "1D": d}


def count(db: Database) -> int:
    ensure_assessments_schema(db)
    return db.execute("SELECT COUNT(*) FROM assessments")[0][0]


# -- the frameworks as data -----------------------------------------------------------------------------

def test_frameworks_are_the_ten_indicators_and_eds_domain_1() -> None:
    fws = load_frameworks()
    assert list(fws) == ["poe", "eds"]
    poe, e = fws["poe"], fws["eds"]
    assert [i.id for i in poe.items] == POE_IDS
    assert poe.values == ("red", "amber", "green") and poe.scale_kind == "rag" and poe.max_total is None
    assert [(i.id, i.name) for i in e.items] == [("1A", "Access"), ("1B", "Individual needs met"),
                                                 ("1C", "Free from harm"), ("1D", "Positive experience")]
    assert [(p.value, p.label) for p in e.scale] == [("0", "Undeveloped"), ("1", "Developing"), ("2", "Achieving"),
                                                     ("3", "Excelling")]
    assert e.max_total == 12
    with pytest.raises(ConfigurationError, match="unknown assessment framework"):
        get_framework("cqc")


# -- validation: all or nothing --------------------------------------------------------------------------

@pytest.mark.parametrize(("scores", "evidence", "reason"), [
    ({**eds(1, 1, 1, 1), "1E": 2}, {}, "unknown item '1E'"),
    (eds(4, 1, 1, 1), {}, "score for 1A must be one of 0, 1, 2, 3, not '4'"),
    (eds(1, -1, 1, 1), {}, "score for 1B must be one of"),
    ({"1A": 1, "1B": 1, "1C": 1}, {}, r"item 1D \(Positive experience\) has no score"),
    ({**eds(1, 1, 1, 1), "1C": "excelling"}, {}, "score for 1C"),
    (eds(1, 1, 1, 1), {"2A": "x"}, "evidence for unknown item '2A'"),
    (eds(1, 1, 1, 1), {"1A": "x" * 2001}, "evidence for 1A is longer than 2000"),
])
def test_refused_assessments_store_nothing(any_db: Database, scores: dict, evidence: dict, reason: str) -> None:
    record_assessment(any_db, "eds", "icb", "QNQ", eds(1, 1, 1, 1), {}, date(2025, 1, 1), "amy")
    with pytest.raises(ConfigurationError, match=reason):
        record_assessment(any_db, "eds", "icb", "QNQ", scores, evidence, date(2025, 6, 1), "amy")
    assert count(any_db) == 4
    assert len(history(any_db, "eds", "icb", "QNQ")) == 1


def test_poe_scores_are_red_amber_green(any_db: Database) -> None:
    scores = dict.fromkeys(POE_IDS, "green")
    with pytest.raises(ConfigurationError, match="score for smoking_cessation must be one of red, amber, green"):
        record_assessment(any_db, "poe", "icb", "QNQ", {**scores, "smoking_cessation": "2"}, {}, date(2025, 1, 1),
                          "amy")
    with pytest.raises(ConfigurationError, match="unknown item 'nonsense'"):
        record_assessment(any_db, "poe", "icb", "QNQ", {**scores, "nonsense": "red"}, {}, date(2025, 1, 1), "amy")
    with pytest.raises(ConfigurationError, match="item smoking_cessation is scored twice"):
        record_assessment(any_db, "poe", "icb", "QNQ", {**scores, "Smoking_Cessation": "red"}, {}, date(2025, 1, 1),
                          "amy")
    scores = {k: v for k, v in scores.items() if k != "smoking_cessation"}
    record_assessment(any_db, "poe", "icb", "qnq", {**scores, "Smoking_Cessation": "Amber", "primary_care": "red"},
                      {"primary_care": "  no SMI register review  "}, date(2025, 1, 1), "amy")
    got = latest(any_db, "poe", "icb", "QNQ")
    assert got is not None and got.area_code == "QNQ"
    assert got.score("smoking_cessation") == "amber" and got.score("primary_care") == "red"
    assert got.counts() == {"green": 8, "amber": 1, "red": 1} and got.total is None
    assert next(i for i in got.items if i.item_id == "primary_care").evidence == "no SMI register review"
    row = summary(any_db, "poe").iloc[0]
    assert (row["red"], row["amber"], row["green"]) == (1, 1, 8)


def test_areas_dates_and_users_are_checked(any_db: Database) -> None:
    good = eds(1, 1, 1, 1)
    for level, code, reason in [("ccg", "QNQ", "area level must be one of"), ("icb", "Q N!", "ODS code"),
                                ("service", "", "service code"), ("service", "a/b", "service code"),
                                ("service", "x" * 101, "service code")]:
        with pytest.raises(ConfigurationError, match=reason):
            record_assessment(any_db, "eds", level, code, good, {}, date(2025, 1, 1), "amy")
    with pytest.raises(ConfigurationError, match="after today"):
        record_assessment(any_db, "eds", "icb", "QNQ", good, {}, date(2025, 1, 2), "amy", today=date(2025, 1, 1))
    with pytest.raises(ConfigurationError, match="username"):
        record_assessment(any_db, "eds", "icb", "QNQ", good, {}, date(2025, 1, 1), "")
    with pytest.raises(ConfigurationError, match="unknown assessment framework"):
        record_assessment(any_db, "nope", "icb", "QNQ", good, {}, date(2025, 1, 1), "amy")
    assert count(any_db) == 0
    assert normalise_area("Service", "  Early   intervention  ") == ("service", "Early intervention")


# -- history, totals and the latest per area ---------------------------------------------------------------

def test_history_is_oldest_first_with_eds_totals(any_db: Database) -> None:
    svc = "Early intervention in psychosis"
    record_assessment(any_db, "eds", "service", svc, eds(3, 3, 3, 3), {}, date(2025, 9, 1), "bo")
    record_assessment(any_db, "eds", "service", svc, eds(2, 1, 3, 0), {"1A": "waiting times audit"},
                      date(2024, 3, 31), "amy")  # recorded later, dated earlier
    record_assessment(any_db, "eds", "service", svc, eds(2, 2, 3, 0), {}, date(2025, 3, 31), "amy")
    found = history(any_db, "eds", "service", svc)
    assert [a.assessed_on for a in found] == [date(2024, 3, 31), date(2025, 3, 31), date(2025, 9, 1)]
    assert [(a.total, a.max_total) for a in found] == [(6, 12), (7, 12), (12, 12)]
    first = found[0]
    assert [(i.item_id, i.score, i.label) for i in first.items] == [
        ("1A", "2", "Achieving"), ("1B", "1", "Developing"), ("1C", "3", "Excelling"), ("1D", "0", "Undeveloped")]
    assert first.items[0].evidence == "waiting times audit" and first.username == "amy"
    assert latest(any_db, "eds", "service", svc) == found[-1]
    df = history_frame(any_db, "eds", "service", svc)
    assert df["total"].tolist() == [6, 7, 12]
    assert df["change"].isna().tolist() == [True, False, False] and df["change"].tolist()[1:] == [1, 5]
    assert latest(any_db, "eds", "service", "Another service") is None
    assert history(any_db, "poe", "service", svc) == []


def test_a_correction_on_the_same_day_is_the_latest(any_db: Database) -> None:
    record_assessment(any_db, "eds", "icb", "QNQ", eds(1, 1, 1, 1), {}, date(2025, 3, 31), "amy")
    second = record_assessment(any_db, "eds", "icb", "QNQ", eds(2, 1, 1, 1), {}, date(2025, 3, 31), "amy")
    got = latest(any_db, "eds", "icb", "QNQ")
    assert got is not None and got.assessment_id == second and got.total == 5
    assert len(history(any_db, "eds", "icb", "QNQ")) == 2


def test_latest_per_area(any_db: Database) -> None:
    record_assessment(any_db, "eds", "icb", "QNQ", eds(1, 1, 1, 1), {}, date(2024, 3, 31), "amy")
    record_assessment(any_db, "eds", "icb", "QNQ", eds(2, 2, 2, 2), {}, date(2025, 3, 31), "amy")
    record_assessment(any_db, "eds", "icb", "QKS", eds(0, 0, 1, 0), {}, date(2025, 3, 31), "amy")
    record_assessment(any_db, "eds", "trust", "RX2", eds(3, 2, 1, 0), {}, date(2025, 1, 1), "amy")
    record_assessment(any_db, "eds", "service", "RX2 early intervention", eds(3, 3, 1, 0), {}, date(2025, 1, 1),
                      "amy")
    record_assessment(any_db, "poe", "icb", "QNQ", dict.fromkeys(POE_IDS, "amber"), {}, date(2025, 1, 1), "amy")
    icbs = summary(any_db, "eds", "icb")
    assert icbs[["area_code", "total"]].values.tolist() == [["QKS", 1], ["QNQ", 8]]
    assert icbs.columns.tolist() == ["area_level", "area_code", "assessed_on", "username", "1A", "1B", "1C", "1D",
                                     "total", "max_total"]
    every = latest_per_area(any_db, "eds")
    assert [(a.area_level, a.area_code, a.total) for a in every] == [
        ("icb", "QKS", 1), ("icb", "QNQ", 8), ("trust", "RX2", 6), ("service", "RX2 early intervention", 7)]
    assert len(summary(any_db, "poe")) == 1 and summary(any_db, "poe", "trust").empty
    with pytest.raises(ConfigurationError):
        summary(any_db, "eds", "ccg")


# -- append-only --------------------------------------------------------------------------------------------

def test_postgres_refuses_update_delete_and_truncate(postgres_db: Database) -> None:
    import psycopg

    record_assessment(postgres_db, "eds", "icb", "QNQ", eds(2, 1, 3, 0), {}, date(2025, 3, 31), "amy")
    for sql in ("UPDATE assessments SET score = '3'", "DELETE FROM assessments", "TRUNCATE assessments"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            with postgres_db.transaction():
                postgres_db.execute(sql)
    got = latest(postgres_db, "eds", "icb", "QNQ")
    assert got is not None and got.total == 6 and count(postgres_db) == 4


def test_schema_setup_is_idempotent(postgres_url: str) -> None:
    for _ in range(2):  # a second process (a fresh Database) finds the table and triggers in place
        with open_database(postgres_url) as db:
            ensure_assessments_schema(db)
            record_assessment(db, "eds", "icb", "QNQ", eds(0, 0, 0, 0), {}, date(2025, 3, 31), "amy")
    with open_database(postgres_url) as db:
        assert len(history(db, "eds", "icb", "QNQ")) == 2
        triggers = db.execute("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass('assessments') "
                              "AND NOT tgisinternal")[0][0]
        assert triggers == 2


# -- the command line ---------------------------------------------------------------------------------------

@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(assessments_app, name="assessments")
    return app


def test_cli_records_shows_and_lists_history(cli: typer.Typer, tmp_path: Path) -> None:
    db = str(tmp_path / "p.duckdb")
    runner = CliRunner()
    env = {"PARITY_TODAY": "2026-03-31", "USER": "cli-user"}
    base = ["assessments", "record", "eds", "--level", "icb", "--area", "qnq", "--database", db]
    ok = runner.invoke(cli, [*base, "--score", "1A=2", "--score", "1b=1", "--score", "1C=3", "--score", "1D=0",
                             "--evidence", "1A=Access audit 2025", "--date", "2025-03-31"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "eds 2025-03-31, total 6/12" in ok.output
    ok = runner.invoke(cli, [*base, "--score", "1A=3", "--score", "1B=1", "--score", "1C=3", "--score", "1D=1"],
                       env=env)
    assert ok.exit_code == 0, ok.output
    assert "eds 2026-03-31, total 8/12" in ok.output

    refused = runner.invoke(cli, [*base, "--score", "1A=4", "--score", "1B=1", "--score", "1C=3", "--score", "1D=0"],
                            env=env)
    assert isinstance(refused.exception, ConfigurationError) and "score for 1A" in str(refused.exception)
    twice = runner.invoke(cli, [*base, "--score", "1A=1", "--score", "1a=2"], env=env)
    assert isinstance(twice.exception, ConfigurationError) and "given twice" in str(twice.exception)
    bad = runner.invoke(cli, [*base, "--score", "1A"], env=env)
    assert isinstance(bad.exception, ConfigurationError) and "ITEM=VALUE" in str(bad.exception)
    future = runner.invoke(cli, [*base, "--score", "1A=1", "--score", "1B=1", "--score", "1C=1", "--score", "1D=1",
                                 "--date", "2026-04-01"], env=env)
    assert isinstance(future.exception, ConfigurationError)

    shown = runner.invoke(cli, ["assessments", "show", "eds", "--database", db, "--format", "json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert [(r["area_code"], r["total"], r["username"]) for r in json.loads(shown.output)] == [("QNQ", 8, "cli-user")]
    one = runner.invoke(cli, ["assessments", "show", "eds", "--level", "icb", "--area", "QNQ", "--database", db,
                              "--format", "csv"], env=env)
    assert one.exit_code == 0 and one.output.splitlines()[1] == "1A,Access,3,Excelling,"
    hist = runner.invoke(cli, ["assessments", "history", "eds", "--level", "icb", "--area", "QNQ", "--database", db,
                               "--format", "json"], env=env)
    rows = json.loads(hist.output)
    assert [(r["assessed_on"][:10], r["total"], r["change"]) for r in rows] == [("2025-03-31", 6, None),
                                                                                ("2026-03-31", 8, 2)]
    table = runner.invoke(cli, ["assessments", "show", "eds", "--database", db], env=env)
    assert table.exit_code == 0 and "QNQ" in table.output
    with open_database(db) as check:
        assert count(check) == 8
