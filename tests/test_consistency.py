"""Every surface agrees (issue 11): the same question (measure, reporting date, organisation structure, codelist
release, organisation) asked of the overview page, the checks page and its CSV export, the API, the CLI, the
highlight report and the inequalities totals gives the same register and all-six counts, on DuckDB and
PostgreSQL, in both structures and with two codelist releases.

The answers are also checked against an independent count: the per-patient CLI output (``--patients``) summed by
hand over the practices the structure puts in the organisation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import need
from parity.access import add_user, issue_token
from parity.codes import load_codelist
from parity.codes.release import read_release_file
from parity.codes.store import import_release
from parity.ingest import load_extract
from parity.orgs import practices as structure_practices
from parity.orgs import structure_label
from parity.reports.highlight import build_highlight
from parity.reports.inequalities import inequalities
from parity.reports.published import import_published, packaged_series
from parity.reports.results import Choice, ResultStore, reset_choice, set_choice
from parity.settings import Settings
from parity.synth import generate
from parity.web import create_app

AS_OF = date(2026, 9, 30)
TODAY = date(2026, 11, 22)
ICB = "QKS"       # NHS Kent and Medway: the same code in the 2022-23 and 2026 structures
REGION = "Y59"
SECRET = "consistency-secret-0123456789-abcdefghijkl"
PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class World:
    url: str
    token: str


def _narrow_release(tmp: Path) -> Path:
    """A release whose ALC_COD has only its first code: fewer people have alcohol recorded."""
    first = load_codelist("ALC_COD").codes[0]
    path = tmp / "narrow.csv"
    path.write_text(f"code,term\n{first.code},{first.term}\n", encoding="utf-8")
    return path


def _build(url: str, extract: Path, tmp: Path) -> World:
    from parity.db import open_database

    with open_database(url) as db:
        load_extract(db, extract, mode="replace")
        import_release(db, "narrow", read_release_file(_narrow_release(tmp), cluster="ALC_COD"))
        import_published(db, packaged_series())
        add_user(db, "lead", "programme", None, PASSWORD)
        return World(url, issue_token(db, "lead", "consistency"))


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("consistency") / "extract"
    generate(out, scale="icb", area=ICB, patients=700, seed=11, as_of=AS_OF, fmt="parquet", structure="2026")
    return out


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def world(request: pytest.FixtureRequest, extract: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("consistency-db")
    if request.param == "duckdb":
        yield _build(str(tmp / "parity.duckdb"), extract, tmp)
        return
    import psycopg

    base = os.environ.get("PARITY_TEST_POSTGRES_URL", "")
    if not base:
        need("PARITY_TEST_POSTGRES_URL is not set")
    schema = f"cons_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        yield _build(url, extract, tmp)
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def from_cli(world: World) -> dict[tuple[str, str], dict]:
    """The CLI's answers to every question, asked before the app opens the database (a DuckDB file admits one
    process; issue 16 is about running the CLI beside a server)."""
    out: dict[tuple[str, str], dict] = {}
    for structure, codelists in QUESTIONS:
        r = cli("measure", "--database", world.url, "--as-of", str(AS_OF), "--patients", "--format", "csv",
                "--codelists", codelists)
        assert r.returncode == 0, r.stderr
        answer: dict = {"patients": list(csv.DictReader(io.StringIO(r.stdout)))}
        for level in ("icb", "region"):
            r = cli("measure", "--database", world.url, "--as-of", str(AS_OF), "--level", level, "--structure",
                    structure, "--codelists", codelists, "--format", "json")
            assert r.returncode == 0, r.stderr
            answer[level] = json.loads(r.stdout)
        out[(structure, codelists)] = answer
    return out


@pytest.fixture(scope="module")
def client(world: World, from_cli: dict) -> Iterator[TestClient]:
    settings = replace(Settings(database_url=world.url), secret_key=SECRET, today=TODAY, synthetic=True)
    with TestClient(create_app(settings), follow_redirects=False) as c:
        yield c


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True, timeout=300)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


QUESTIONS = [("2026", "shipped"), ("2022-23", "shipped"), ("2026", "narrow"), ("2022-23", "narrow")]


@pytest.mark.parametrize(("structure", "codelists"), QUESTIONS, ids=[f"{s}-{c}" for s, c in QUESTIONS])
def test_every_surface_gives_the_same_counts(world: World, from_cli: dict, client: TestClient, structure: str,
                                             codelists: str) -> None:
    query = f"as_of={AS_OF}&measure=phsmi&structure={structure}&codelists={codelists}"
    auth = {"Authorization": f"Bearer {world.token}"}
    answers: dict[str, dict[str, tuple[int, int]]] = {ICB: {}, REGION: {}}

    # The independent count: one row per patient from the CLI, summed over the practices the structure puts
    # in the ICB and the region (shipped practice files, not Parity's aggregation code).
    asked = from_cli[(structure, codelists)]
    people = [p for p in asked["patients"] if p["in_denominator"] == "true"]
    orgs = structure_practices(structure).set_index("practice_code")
    for code, column in ((ICB, "icb_code"), (REGION, "region_code")):
        mine = [p for p in people if p["practice_code"] in orgs.index and orgs.loc[p["practice_code"], column] == code]
        answers[code]["by hand"] = (len(mine), sum(p["all_six"] == "true" for p in mine))
    assert answers[ICB]["by hand"][0] > 100

    for level, code in (("icb", ICB), ("region", REGION)):
        # Overview page
        page = client.get(f"/orgs/{level}/{code}?{query}", headers=auth)
        assert page.status_code == 200, page.text[:300]
        reg = re.search(r'data-testid="register">([\d,]+)<', page.text).group(1)
        six = re.search(r'data-testid="all-six">([\d,]+)<', page.text).group(1)
        answers[code]["overview page"] = (_int(reg), _int(six))
        assert re.search(r'data-testid="figures-structure">' + re.escape(structure), page.text)
        assert ("release narrow" if codelists == "narrow" else "shipped with Parity") in page.text
        # Checks page: the organisation's own row (register and all-six rate) and its CSV export (counts)
        checks = client.get(f"/orgs/{level}/{code}/checks?{query}", headers=auth)
        assert checks.status_code == 200
        total = re.search(r'parity-row--total">.*?parity-num">([\d,]+)</td>', checks.text, re.S).group(1)
        answers[code]["checks page register"] = (_int(total), answers[code]["overview page"][1])
        # API
        api = client.get(f"/api/v1/measures?level={level}&{query}", headers=auth)
        assert api.status_code == 200, api.text[:300]
        body = api.json()
        assert body["structure"] == structure
        row = next(x for x in body["rows"] if x["org_code"] == code)
        answers[code]["API"] = (row["register"], row["all_six"])
        # CLI
        out = asked[level]
        assert out["metadata"]["structure"].startswith(structure)
        row = next(x for x in out["rows"] if x["org_code"] == code)
        answers[code]["CLI"] = (row["register"], row["all_six"])

    # The children's rows on the region's checks-page export add up to the ICB's figures
    export = client.get(f"/orgs/region/{REGION}/areas.csv?{query}", headers=auth)
    assert export.status_code == 200
    rows = {x["Code"]: x for x in csv.DictReader(io.StringIO(export.text))}
    answers[ICB]["checks export"] = (int(rows[ICB]["Register"]), int(rows[ICB]["All six"]))
    answers[REGION]["checks export"] = (int(rows[REGION]["Register"]), int(rows[REGION]["All six"]))
    assert {r["Structure"] for r in rows.values()} == {structure_label(structure)}
    assert all(r["Codelists"].startswith("release narrow" if codelists == "narrow" else "shipped with Parity")
               for r in rows.values())

    db = client.app.state.parity.db  # the app's own connection (a DuckDB file admits one process)
    store = ResultStore(db)
    # Highlight report: Parity's own figures for the region on the same date, structure and release
    report = build_highlight(db, REGION, structure=structure, results=store, as_of=AS_OF, codelists=codelists)
    assert report.parity is not None and report.structure.startswith(structure)
    answers[REGION]["highlight report"] = (report.parity["register"], report.parity["all_six"])
    # Inequalities: the groups of a breakdown add up to the organisation's total
    token = set_choice(Choice(structure=structure, codelists=codelists))
    try:
        for level, code in (("icb", ICB), ("region", REGION)):
            by_sex = inequalities(store, "phsmi", AS_OF, level, code, by="sex")
            answers[code]["inequalities total"] = (int(by_sex["register"].sum()), int(by_sex["all_six"].sum()))
    finally:
        reset_choice(token)

    for code, said in answers.items():
        assert len(set(said.values())) == 1, f"{code} ({structure}, {codelists}): {said}"


def test_the_structure_changes_the_organisations_not_the_people(world: World, client: TestClient) -> None:
    """The default structure is the one in force on the reporting date; an unknown one is refused."""
    auth = {"Authorization": f"Bearer {world.token}"}
    default = client.get(f"/api/v1/measures?level=icb&as_of={AS_OF}", headers=auth).json()
    assert default["structure"] == "2026"
    old = client.get("/api/v1/measures?level=region&as_of=2024-03-31", headers=auth).json()
    assert old["structure"] == "2022-23"
    bad = client.get(f"/api/v1/measures?level=icb&as_of={AS_OF}&structure=1999", headers=auth)
    assert bad.status_code == 422  # the API's parameter is typed
    page = client.get(f"/orgs/region/{REGION}?as_of={AS_OF}&structure=1999", headers=auth)
    assert page.status_code == 400 and "unknown organisation structure" in page.text
    unknown = client.get(f"/api/v1/measures?level=icb&as_of={AS_OF}&codelists=never-imported", headers=auth)
    assert unknown.status_code == 404


def test_one_region_is_never_called_england(world: World, client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {world.token}"}
    body = client.get(f"/api/v1/measures?level=england&as_of={AS_OF}", headers=auth).json()
    (row,) = body["rows"]
    assert row["org_name"] != "England" and "South East" in row["org_name"]
