"""Inequalities (product.md M8): group mappings, CI formulae, small-number suppression, totals, the web page."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from parity.db import Database, open_database
from parity.ingest import load_extract
from parity.reports.disclosure import DisclosureControl
from parity.reports.inequalities import (
    BREAKDOWNS,
    GROUPS,
    REFERENCE,
    age_band,
    ages,
    ethnic_group,
    imd_quintile,
    inequalities,
    rate_ratio,
    sex_group,
    suppress_groups,
    wilson,
)
from parity.reports.measures import measure_table
from parity.reports.results import ResultStore
from parity.settings import Settings
from parity.synth import generate

AS_OF = date(2026, 9, 30)
PRACTICE = "J82155"
SETTINGS = Settings(database_url="unused")  # suppress 1..7, round to 5


# -- formulae -----------------------------------------------------------------------------------------------
def test_wilson_40_of_100_by_hand() -> None:
    # p = 0.4, n = 100, z = 1.959964, z² = 3.841459, z²/n = 0.0384146
    # centre = (p + z²/2n) / (1 + z²/n) = 0.4192073 / 1.0384146 = 0.4037 (0.403700)
    # half   = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n) = 1.959964·sqrt(0.0024 + 0.0000960) / 1.0384146 = 0.0942989
    # → 0.30940 to 0.49800
    low, high = wilson([40], [100])
    assert low[0] == pytest.approx(0.309401, abs=1e-5)
    assert high[0] == pytest.approx(0.497999, abs=1e-5)


def test_wilson_edges() -> None:
    low, high = wilson([0, 10, 0], [10, 10, 0])
    assert low[0] == 0.0 and 0.0 < high[0] < 0.35
    assert high[1] == pytest.approx(1.0) and 0.65 < low[1] < 1.0
    assert math.isnan(low[2]) and math.isnan(high[2])


def test_rate_ratio_log_ci_by_hand() -> None:
    # 2×2: group a = 30 of n1 = 100 (30%), reference c = 60 of n2 = 120 (50%).
    # RR = 0.30 / 0.50 = 0.6
    # SE(ln RR) = sqrt(1/30 - 1/100 + 1/60 - 1/120) = sqrt(0.0333333 - 0.01 + 0.0166667 - 0.0083333)
    #           = sqrt(0.0316667) = 0.1779513
    # z·SE = 1.959964 · 0.1779513 = 0.3487781; exp(-0.3487781) = 0.705542, exp(0.3487781) = 1.417349
    # → 0.6 (0.4233 to 0.8504)
    ratio, low, high = rate_ratio([30], [100], [60], [120])
    assert ratio[0] == pytest.approx(0.6)
    assert low[0] == pytest.approx(0.423325, abs=1e-5)
    assert high[0] == pytest.approx(0.850409, abs=1e-5)


def test_rate_ratio_undefined() -> None:
    ratio, low, high = rate_ratio([0, 5, 5], [10, 10, 0], [5, 0, 5], [10, 10, 10])
    assert ratio[0] == 0.0 and math.isnan(low[0]) and math.isnan(high[0])  # a = 0: no log CI
    assert math.isnan(ratio[1]) and math.isnan(low[1])                     # reference rate 0
    assert math.isnan(ratio[2])                                             # empty group


# -- mappings at the boundaries ------------------------------------------------------------------------------
@pytest.mark.parametrize(("age", "band"), [(0, "0–17"), (17, "0–17"), (18, "18–34"), (34, "18–34"), (35, "35–54"),
                                           (54, "35–54"), (55, "55–74"), (74, "55–74"), (75, "75+"), (104, "75+"),
                                           (None, "Not known"), (float("nan"), "Not known"), (-1, "Not known")])
def test_age_bands(age: float | None, band: str) -> None:
    assert age_band(age) == band


def test_age_on_the_reporting_date() -> None:
    dob = pd.Series([date(2008, 9, 30), date(2008, 10, 1), date(1951, 9, 30), date(1951, 10, 1), None])
    got = ages(dob, AS_OF)
    assert got.iloc[:4].tolist() == [18, 17, 75, 74]
    assert math.isnan(got.iloc[4])
    assert [age_band(a) for a in got] == ["18–34", "0–17", "75+", "55–74", "Not known"]


@pytest.mark.parametrize(("decile", "quintile"), [(1, "1 (most deprived)"), (2, "1 (most deprived)"), (3, "2"),
                                                  (4, "2"), (5, "3"), (6, "3"), (7, "4"), (8, "4"),
                                                  (9, "5 (least deprived)"), (10, "5 (least deprived)"),
                                                  (None, "Not known"), (0, "Not known"), (11, "Not known")])
def test_imd_quintiles(decile: int | None, quintile: str) -> None:
    assert imd_quintile(decile) == quintile


@pytest.mark.parametrize(("letter", "group"), [
    ("A", "White"), ("B", "White"), ("C", "White"), ("D", "Mixed"), ("G", "Mixed"), ("H", "Asian or Asian British"),
    ("J", "Asian or Asian British"), ("K", "Asian or Asian British"), ("L", "Asian or Asian British"),
    ("M", "Black or Black British"), ("N", "Black or Black British"), ("P", "Black or Black British"),
    ("R", "Other ethnic group"), ("S", "Other ethnic group"), ("Z", "Not stated"), ("99", "Not stated"),
    ("", "Not stated"), (None, "Not stated"), ("a", "White"), ("Q", "Not stated"),
])
def test_ethnic_groups(letter: str | None, group: str) -> None:
    assert ethnic_group(letter) == group


def test_sex_groups() -> None:
    assert [sex_group(s) for s in ("female", "male", "intersex", "unknown", None)] == [
        "Female", "Male", "Other or not known", "Other or not known", "Other or not known"]


# -- suppression ---------------------------------------------------------------------------------------------
def _frame(rows: list[tuple[str, str, int, int]], reference: str = "C") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["org_code", "group", "register", "all_six"]).assign(reference_group=reference)


def test_group_of_five_is_suppressed_with_its_secondary_partner() -> None:
    df = _frame([("X", "A", 5, 4), ("X", "B", 20, 12), ("X", "C", 100, 61), ("X", "D", 0, 0)])
    out = suppress_groups(df, ["register", "all_six"], DisclosureControl(8, 5))
    assert out["register"].isna().tolist() == [True, True, False, False]   # A (5) and its partner B (smallest)
    assert out["all_six"].isna().tolist() == [True, True, False, False]
    assert out.loc[2, "register"] == 100 and out.loc[2, "all_six"] == 60  # rounded to 5
    assert out.loc[3, "register"] == 0                                      # zero stays zero


def test_secondary_partner_is_not_the_reference_when_another_will_do() -> None:
    df = _frame([("X", "A", 3, 1), ("X", "B", 50, 30), ("X", "C", 40, 20)], reference="C")
    out = suppress_groups(df, ["register", "all_six"], DisclosureControl(8, 5))
    assert out["register"].isna().tolist() == [True, True, False]


def test_small_numerator_in_a_large_group_is_suppressed_with_a_partner() -> None:
    df = _frame([("X", "A", 40, 6), ("X", "B", 30, 9), ("X", "C", 50, 30), ("Y", "A", 40, 20), ("Y", "C", 20, 10)])
    out = suppress_groups(df, ["register", "all_six"], DisclosureControl(8, 5))
    assert not out["register"].isna().any()
    assert out["all_six"].isna().tolist() == [True, True, False, False, False]


def _shown(df: pd.DataFrame, cols: list[str]) -> list[int]:
    return [int(v) for c in cols for v in df[c].dropna()]


# -- on real databases ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ineq") / "extract"
    generate(out, scale="practice", area=PRACTICE, seed=1, as_of=AS_OF, fmt="parquet", structure="2022-23")
    return out


def test_totals_match_the_aggregates(any_db: Database, extract: Path) -> None:
    load_extract(any_db, extract, mode="replace")
    results = ResultStore(any_db)
    measure = results.measure("phsmi")
    checks = [c.id for c in measure.checks]
    aggregates = results.aggregates("phsmi", AS_OF)
    for level in ("practice", "pcn", "england"):
        agg = aggregates[level].set_index("org_code")
        table = measure_table(any_db, measure, AS_OF, level).set_index("org_code")
        for by in BREAKDOWNS:
            df = inequalities(results, "phsmi", AS_OF, level, by=by)
            assert set(df["group"]) == set(GROUPS[by])
            totals = df.groupby("org_code")[["register", "all_six", *checks]].sum()
            for code, row in totals.iterrows():
                for col in ["register", "all_six", *checks]:
                    assert row[col] == agg.loc[code, col] == table.loc[code, col], (level, by, code, col)
            assert (df.loc[df["is_reference"], "group"] == REFERENCE[by]).all()
            assert (df.loc[df["is_reference"], "rate_ratio"] == 1.0).all()
    one = inequalities(results, "phsmi", AS_OF, "practice", PRACTICE, by="imd_quintile")
    assert one["org_code"].unique().tolist() == [PRACTICE]
    assert one["register"].sum() == aggregates["practice"].set_index("org_code").loc[PRACTICE, "register"]
    # Exact rates and Wilson limits match the formula on the row's own counts.
    r = one.iloc[1]
    low, high = wilson([r["all_six"]], [r["register"]])
    assert r["percent"] == round(100 * r["all_six"] / r["register"], 1)
    assert (r["ci_low"], r["ci_high"]) == (round(100 * low[0], 1), round(100 * high[0], 1))


def test_disclosure_control_on_the_database(any_db: Database, extract: Path) -> None:
    load_extract(any_db, extract, mode="replace")
    results = ResultStore(any_db)
    checks = [c.id for c in results.measure("phsmi").checks]
    counts = ["register", "all_six", *checks]
    for by in BREAKDOWNS:
        raw = inequalities(results, "phsmi", AS_OF, "practice", by=by)
        safe = inequalities(results, "phsmi", AS_OF, "practice", by=by, settings=SETTINGS)
        assert not [v for v in _shown(safe, counts) if 0 < v < 8]
        assert all(v % 5 == 0 for v in _shown(safe, counts))
        small = raw["register"].between(1, 7)
        assert safe.loc[small, counts + ["percent", "ci_low", "ci_high", "rate_ratio"]].isna().all().all()
        for col in counts:  # never exactly one suppressed cell per organisation and column
            per_org = safe[col].isna().groupby(safe["org_code"]).sum()
            assert not (per_org == 1).any(), (by, col)
        # Rates are rebuilt from the rounded counts.
        ok = safe["register"].notna() & safe["all_six"].notna() & (safe["register"] > 0)
        rebuilt = (100 * safe.loc[ok, "all_six"].astype(float) / safe.loc[ok, "register"].astype(float)).round(1)
        assert np.allclose(rebuilt.to_numpy(dtype=float), safe.loc[ok, "percent"].to_numpy(dtype=float))
    # This practice has one person whose sex is not male or female: suppressed with a partner.
    sex = inequalities(results, "phsmi", AS_OF, "practice", by="sex", settings=SETTINGS).set_index("group")
    assert pd.isna(sex.loc["Other or not known", "register"]) and pd.isna(sex.loc["Male", "register"])
    assert sex.loc["Female", "register"] > 0 and sex.loc["Female", "is_reference"]


def test_unknown_breakdown_and_reference_are_refused(duckdb_db: Database, extract: Path) -> None:
    from parity.errors import ConfigurationError

    load_extract(duckdb_db, extract, mode="replace")
    results = ResultStore(duckdb_db)
    with pytest.raises(ConfigurationError):
        inequalities(results, "phsmi", AS_OF, "practice", by="religion")
    with pytest.raises(ConfigurationError):
        inequalities(results, "phsmi", AS_OF, "practice", by="sex", reference="Other")
    largest = inequalities(results, "phsmi", AS_OF, "practice", by="age_band", reference="largest")
    assert largest.loc[largest["is_reference"], "group"].tolist() == ["35–54"]


# -- CLI and web page ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def duckdb_file(extract: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("ineqdb") / "parity.duckdb")
    with open_database(url) as db:
        load_extract(db, extract, mode="replace")
    return url


def test_cli(duckdb_file: str) -> None:
    import json

    import typer
    from typer.testing import CliRunner

    from parity.reports.inequalities_cli import inequalities_app

    app = typer.Typer()
    app.command("noop")(lambda: None)
    app.add_typer(inequalities_app, name="inequalities")
    r = CliRunner().invoke(app, ["inequalities", "--by", "sex", "--level", "practice", "--as-of", "2026-09-30",
                                 "--database", duckdb_file, "--disclosure", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["group"] for row in rows] == list(GROUPS["sex"])
    assert rows[2]["register"] is None and rows[0]["reference_group"] == "Female"


def test_web_page_suppresses_and_labels_the_reference(duckdb_file: str) -> None:
    from parity.access import add_user
    from parity.web import create_app
    from parity.web.routes import inequalities as route

    with open_database(duckdb_file) as db:
        add_user(db, "programme1", "programme", None, "correct-horse-battery")
    settings = replace(Settings(database_url=duckdb_file), secret_key="test-secret-key-0123456789-abcdefghijklmnop",
                       today=date(2026, 11, 22), structure="2022-23", synthetic=True)
    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/orgs/{level}/{code}/inequalities" for r in app.routes):
        app.include_router(route.router)
    with TestClient(app, follow_redirects=False) as client:
        url = f"/orgs/practice/{PRACTICE}/inequalities?measure=phsmi&as_of=2026-09-30"
        assert client.get(url).status_code in (303, 401)  # signed-in users only
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/login", data={"username": "programme1", "password": "correct-horse-battery",
                                        "csrf_token": token, "next": "/"})
        assert r.status_code == 303
        r = client.get(url + "&by=sex")
        assert r.status_code == 200, r.text[:500]
        section = r.text[r.text.index('id="inequalities-sex"'):]
        section = section[:section.index("</table>")]
        other = section[section.index("Other or not known"):]
        other = other[:other.index("</tr>")]
        assert "*" in other and "suppressed" in other
        male = section[section.index(">Male"):]
        assert "suppressed" in male[:male.index("</tr>")]
        female = section[section.index(">Female"):]
        assert "Reference" in female[:female.index("</tr>")]
        assert "Reference group: <strong" in r.text and "Female" in r.text
        assert not re.search(r'parity-num">[1-7]<', section)
        r = client.get(f"/orgs/practice/{PRACTICE}/inequalities?measure=phsmi&as_of=2026-09-30")
        assert r.status_code == 200
        for by in BREAKDOWNS:
            assert f'id="inequalities-{by}"' in r.text
        assert client.get(url + "&by=religion").status_code == 400
