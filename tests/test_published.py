"""Published NHS England SDCS series: import, validation, code mapping, roll-ups and the CLI.

The expected totals are computed here straight from the raw xlsx with pandas and a code list written
out by hand from the ODS eccg file (National Grouping / High Level Health Geography), independently of
``parity.reports.published``.
"""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import need
from parity.db import Database, open_database
from parity.errors import ValidationError
from parity.reports import published as pub
from parity.reports.published_cli import published_app

# The shared reference data sits beside the repository (as in CI: ../shared), never inside it.
RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "published" / \
    "Physical-Health-Checks-SMI_Raw_Data.xlsx"


@pytest.fixture(autouse=True)
def _raw_file() -> None:
    if not RAW.is_file():
        need(f"the published series is not at {RAW}")

# Written out from the ODS eccg file (2026-02): every code of the raw file in the region / old ICB.
REGION_CODES = {
    "Y59": "09C 09D 09E 09F 09G 09H 09J 09L 09N 09P 09W 09X 09Y 10A 10C 10D 10E 10J 10K 10L 10Q 10R 10V 10X "
           "11A 14Y 15A 15D 70F 91Q 92A 97R 99H 99J 99K 99M D4U1Y D9Y0V".split(),
    "Y58": "11E 11J 11M 11N 11X 12D 15C 15N 92G 99N 99P 99Q".split(),
}
ICB_CODES = {
    # NHS Kent and Medway ICB (unchanged in 2026)
    "QKS": "09C 09E 09J 09W 10A 10D 10E 91Q 99J".split(),
    # NHS Surrey and Sussex ICB (2026) = Surrey Heartlands (QXU) + Sussex (QNX)
    "S9B9J": "09L 09N 09Y 92A 99H".split() + "09D 09F 09G 09H 09P 09X 70F 97R 99K".split(),
}
# The same codes in the 2022-23 structure (in force for every published period): the 2021 ICS footprints.
ICB_CODES_2022 = {
    "QKS": ICB_CODES["QKS"],
    "QXU": "09L 09N 09Y 92A 99H".split(),      # Surrey Heartlands
    "QNX": "09D 09F 09G 09H 09P 09X 70F 97R 99K".split(),  # Sussex
}
PERIODS = {"2019-20-Q4": "SMI-Q4-2019-2020", "2023-24-Q4": "SMI-Q4-2023-2024"}

# clinical-spec.md §5: (England register, England all six, SE register, SE all six)
SPEC = {
    "2018-19-Q3": (488_357, 117_932, 58_418, 11_731),
    "2019-20-Q4": (444_972, 159_312, 38_662, 9_863),
    "2020-21-Q4": (516_897, 121_030, 65_022, 11_973),
    "2022-23-Q4": (535_204, 313_022, 73_942, 37_107),
    "2023-24-Q1": (527_859, 281_626, 74_224, 36_004),
    "2023-24-Q4": (527_556, 361_210, 73_995, 43_960),
}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    frame = pd.read_excel(RAW, header=1, dtype=str)
    frame = frame[frame["Answer"].notna()].copy()
    frame["Answer"] = frame["Answer"].astype(int)
    return frame


def _expected(raw: pd.DataFrame, period: str, codes: list[str] | None) -> dict[str, int]:
    rows = raw[raw["Period"] == PERIODS.get(period, period)]
    if codes is not None:
        rows = rows[rows["CCG Code"].isin(codes)]
    sums = rows.groupby("Question")["Answer"].sum()
    return {"register": int(sums["SMIRegister"]), "all_six": int(sums["All6PHC"]),
            "blood_pressure": int(sums["BloodPressure"]), "smoking": int(sums["Smoking"])}


@pytest.fixture(scope="module")
def duck() -> Database:
    db = open_database(":memory:")
    pub.import_published(db, RAW)
    yield db
    db.close()


# -- periods ---------------------------------------------------------------------------------------


def test_period_labels() -> None:
    assert pub.parse_period("SMI-Q1-2021-2022") == "2021-22-Q1"
    assert pub.parse_period("2021-22-Q1") == "2021-22-Q1"
    assert pub.period_start("2021-22-Q1") == date(2021, 4, 1)
    assert pub.period_end("2021-22-Q1") == date(2021, 6, 30)
    assert pub.period_end("2021-22-Q2") == date(2021, 9, 30)
    assert pub.period_end("2021-22-Q3") == date(2021, 12, 31)
    assert pub.period_start("2021-22-Q4") == date(2022, 1, 1)
    assert pub.period_end("2021-22-Q4") == date(2022, 3, 31)
    assert pub.period_end("SMI-Q4-2019-2020") == date(2020, 3, 31)
    for bad in ("SMI-Q5-2021-2022", "SMI-Q1-2021-2023", "2021-23-Q1", "Q1 2021", ""):
        with pytest.raises(ValueError):
            pub.parse_period(bad)


# -- import and roll-ups (both databases) --------------------------------------------------------


def test_import_reproduces_independent_totals(any_db: Database, raw: pd.DataFrame) -> None:
    result = pub.import_published(any_db, RAW)
    assert result.rows == len(raw) and result.blank == 24 and len(result.periods) == 22
    for period in PERIODS:
        regions = pub.rollup(any_db, period, "region").set_index("org_code")
        for region, codes in REGION_CODES.items():
            want = _expected(raw, period, codes)
            got = regions.loc[region]
            assert {k: int(got[k]) for k in want} == want, (period, region)
        icbs = pub.rollup(any_db, period, "icb", structure="2026").set_index("org_code")
        for icb, codes in ICB_CODES.items():
            want = _expected(raw, period, codes)
            assert {k: int(icbs.loc[icb][k]) for k in want} == want, (period, icb)
        # By default a published quarter is shown in the structure in force at its end (issue 11).
        default = pub.rollup(any_db, period, "icb")
        assert default.attrs["structure"] == "2022-23"
        default = default.set_index("org_code")
        assert "S9B9J" not in default.index
        for icb, codes in ICB_CODES_2022.items():
            want = _expected(raw, period, codes)
            assert {k: int(default.loc[icb][k]) for k in want} == want, (period, icb)
        england = pub.rollup(any_db, period, "england").iloc[0]
        assert int(england["register"]) == _expected(raw, period, None)["register"]
        # Every code lands in exactly one region: regions add up to England.
        assert int(regions["register"].sum()) == int(england["register"])
    assert pub.unmapped_codes(any_db).empty
    # Same file again: replaced, not doubled.
    again = pub.import_published(any_db, RAW)
    assert again.replaced_rows == result.rows
    assert int(any_db.execute("SELECT COUNT(*) FROM published_phc")[0][0]) == result.rows
    assert [r[1] for r in any_db.execute("SELECT imported_at, sha256 FROM published_imports")] == [result.sha256]


def test_national_totals_match_clinical_spec(duck: Database) -> None:
    for period, (eng_reg, eng_six, se_reg, se_six) in SPEC.items():
        england = pub.rollup(duck, period, "england").iloc[0]
        assert (int(england["register"]), int(england["all_six"])) == (eng_reg, eng_six), period
        se = pub.rollup(duck, period, "region").set_index("org_code").loc["Y59"]
        assert (int(se["register"]), int(se["all_six"])) == (se_reg, se_six), period
    england = pub.rollup(duck, "2023-24-Q4", "england").iloc[0]
    assert float(england["percent"]) == 68.5
    assert {c: int(england[c]) for c in ("blood_pressure", "bmi", "lipids", "glucose", "alcohol", "smoking")} == {
        "blood_pressure": 448_049, "bmi": 444_625, "lipids": 421_292, "glucose": 429_193, "alcohol": 437_663,
        "smoking": 455_979}
    assert int(england["sources"]) == 106
    assert int(pub.rollup(duck, "2018-19-Q3", "england").iloc[0]["sources"]) == 193


def test_code_map_kinds(duck: Database) -> None:
    cm = pub.code_map(["91Q", "09W", "99K", "D4U1Y", "ZZZ"]).set_index("source_code")
    assert cm.loc["91Q", "how"] == "same code" and cm.loc["91Q", "icb_code"] == "QKS"
    assert cm.loc["09W", "how"] == "successor via ODS end-date/parent ICB" and cm.loc["09W", "mapped_sub_icb"] == "91Q"
    assert cm.loc["99K", "how"] == "manual, with the source" and cm.loc["99K", "mapped_sub_icb"] == "97R"
    assert cm.loc["99K", "icb_code"] == "S9B9J" and cm.loc["99K", "region_code"] == "Y59"
    assert cm.loc["D4U1Y", "how"].startswith("split in 2026") and "41/66" in cm.loc["D4U1Y", "note"]
    assert cm.loc["ZZZ", "how"] == "unmapped"
    assert "NOT consistent" not in " ".join(pub.code_map()["note"])


def test_rollup_filters_series_and_disclosure(duck: Database) -> None:
    se = pub.rollup(duck, "2023-24-Q4", "icb", region="Y59", structure="2026")
    assert list(se.columns[:5]) == ["org_code", "org_name", "register", "all_six", "percent"]
    assert set(se["org_code"]) == {"QKS", "QRL", "S0E4D", "S9B9J"}
    # In force in 2023-24 (the default): the six ICBs of 2022-23, BOB (QU9) and Frimley (QNQ) among them.
    assert set(pub.rollup(duck, "2023-24-Q4", "icb", region="Y59")["org_code"]) == {
        "QKS", "QNQ", "QNX", "QRL", "QU9", "QXU"}
    subs = pub.rollup(duck, "2023-24-Q4", "sub_icb", region="Y59")
    assert int(subs["register"].sum()) == 73_995
    s = pub.series(duck, "region", "Y59")
    assert list(s["period"])[:2] == ["2018-19-Q3", "2018-19-Q4"] and len(s) == 22
    assert s.iloc[-1]["period_end"] == date(2024, 3, 31)
    assert pub.series(duck, "icb", "NOPE").empty
    assert pub.periods(duck)[0] == "2018-19-Q3" and pub.periods(duck)[-1] == "2023-24-Q4"

    class Controls:
        suppress_below = 8
        round_to = 5

    controlled = pub.rollup(duck, "2023-24-Q4", "icb", region="Y59", settings=Controls(), structure="2026")
    assert all(int(v) % 5 == 0 for v in controlled["register"])


# -- validation ----------------------------------------------------------------------------------


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(["Period,CCG Code,Question,Answer", *lines]) + "\n", encoding="utf-8")
    return path


def test_malformed_file_rejected_and_nothing_stored(any_db: Database, tmp_path: Path) -> None:
    good = _csv(tmp_path / "good.csv", ["SMI-Q1-2023-2024,91Q,SMIRegister,100", "SMI-Q1-2023-2024,91Q,All6PHC,50"])
    pub.import_published(any_db, good)
    bad = _csv(tmp_path / "bad.csv", [
        "SMI-Q1-2023-2024,91Q,SMIRegister,200",
        "SMI-Q9-2023-2024,91Q,All6PHC,60",
        "SMI-Q1-2023-2024,91Q,Smoking,12.5",
        "SMI-Q1-2023-2024,91Q,Weight,3",
    ])
    with pytest.raises(ValidationError) as info:
        pub.import_published(any_db, bad)
    where = {(p.file, p.line, p.column) for p in info.value.problems}
    assert where == {("bad.csv", 3, "Period"), ("bad.csv", 4, "Answer"), ("bad.csv", 5, "Question")}
    assert "bad.csv, line 3, column Period" in str(info.value.problems[0])
    # Nothing from the bad file: the good import is untouched.
    stored = pub.rollup(any_db, "2023-24-Q1", "england").iloc[0]
    assert (int(stored["register"]), int(stored["all_six"])) == (100, 50)
    assert [r[0] for r in any_db.execute("SELECT file_name FROM published_imports")] == ["good.csv"]


# -- CLI -----------------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "parity.duckdb")
    return request.getfixturevalue("postgres_url")


def test_cli_import_and_show(db_url: str) -> None:
    runner = CliRunner()
    out = runner.invoke(published_app, ["import", str(RAW), "--database", db_url])
    assert out.exit_code == 0, out.output
    assert "imported 23704 rows" in out.output
    out = runner.invoke(published_app, ["show", "--database", db_url, "--period", "2023-24-Q4", "--level", "region",
                                        "--format", "csv"])
    assert out.exit_code == 0, out.output
    frame = pd.read_csv(io.StringIO(out.stdout))
    assert list(frame.columns[:5]) == ["org_code", "org_name", "register", "all_six", "percent"]
    assert {"bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking"} <= set(frame.columns)
    assert int(frame.set_index("org_code").loc["Y59", "all_six"]) == 43_960
    out = runner.invoke(published_app, ["show", "--database", db_url, "--period", "SMI-Q4-2023-2024", "--level", "icb",
                                        "--region", "Y59", "--format", "json", "--structure", "2026"])
    assert out.exit_code == 0, out.output
    assert '"S9B9J"' in out.stdout and '"Y56"' not in out.stdout
    assert json.loads(out.stdout)["metadata"]["structure"].startswith("2026 structure")
    out = runner.invoke(published_app, ["show", "--database", db_url, "--period", "SMI-Q4-2023-2024", "--level", "icb",
                                        "--region", "Y59", "--format", "json"])
    payload = json.loads(out.stdout)
    assert payload["metadata"]["structure"].startswith("2022-23 structure")
    assert {r["org_code"] for r in payload["rows"]} == {"QKS", "QNQ", "QNX", "QRL", "QU9", "QXU"}


def test_the_packaged_copy_is_the_shared_file() -> None:
    import hashlib

    from parity.reports.published import packaged_series

    assert hashlib.sha256(packaged_series().read_bytes()).hexdigest() == hashlib.sha256(RAW.read_bytes()).hexdigest()
