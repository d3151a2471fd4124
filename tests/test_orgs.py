"""parity.orgs: versioned organisation hierarchy and QOF MH register sizes.

Expected counts come from shared/data/ods/SOURCES.md and shared/data/qof/SOURCES.md. Register totals
are also recomputed here from the raw shared CSV files with the csv module, independently of the
package's derivation.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

import parity.orgs as orgs
from conftest import need
from parity.db import Database
from parity.errors import ConfigurationError
from parity.orgs._names import tidy_name

SE = "Y59"
SE_ICBS_2223 = {"QKS": 185, "QNQ": 71, "QNX": 158, "QRL": 137, "QU9": 157, "QXU": 104}
SE_ICBS_2026 = {"QKS": 175, "QRL": 144, "S0E4D": 192, "S9B9J": 260}


def shared_dir() -> Path:
    path = Path(os.environ.get("PARITY_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    if not (path / "data" / "qof").is_dir():
        need(f"shared reference data not found at {path} (set PARITY_SHARED_DIR)")
    return path


def raw_rows(rel: str) -> list[dict[str, str]]:
    with (shared_dir() / rel).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- structures and counts ---------------------------------------------------------------------

def test_constants() -> None:
    assert orgs.STRUCTURES == ("2022-23", "2026")
    assert orgs.LEVELS == ("practice", "pcn", "sub_icb", "icb", "region", "england")


@pytest.mark.parametrize("structure", orgs.STRUCTURES)
def test_practices_columns_match_db_table(structure: str) -> None:
    from parity.db.schema import TABLES

    frame = orgs.practices(structure)
    assert list(frame.columns) == TABLES["practices"].column_names == list(orgs.PRACTICE_COLUMNS)
    assert (frame["structure"] == structure).all()
    assert frame["practice_code"].is_unique
    assert not frame.isna().any().any()
    assert not (frame == "").any().any()


def test_unknown_structure_and_level() -> None:
    with pytest.raises(ConfigurationError, match="unknown organisation structure"):
        orgs.practices("2019")
    with pytest.raises(ConfigurationError):
        orgs.organisations("2026", "ccg")
    with pytest.raises(ConfigurationError):
        orgs.organisations("nope", "icb")
    with pytest.raises(ConfigurationError):
        orgs.level_columns("stp")
    with pytest.raises(ConfigurationError):
        orgs.register_sizes("2023-24")


def test_south_east_2022_23() -> None:
    se = orgs.area_practices("2022-23", region=SE)
    assert len(se) == 812
    real = se[~se["pcn_code"].map(orgs.is_unallocated_pcn)]
    unallocated = se[se["pcn_code"].map(orgs.is_unallocated_pcn)]
    # SOURCES.md's 215 PCNs count the source's single "U" (unallocated) code once.
    assert real["pcn_code"].nunique() + (1 if len(unallocated) else 0) == 215
    assert len(unallocated) == 13
    assert se["sub_icb_code"].nunique() == 11
    assert se.groupby("icb_code").size().to_dict() == SE_ICBS_2223
    names = dict(zip(se["icb_code"], se["icb_name"], strict=True))
    assert names["QNQ"] == "NHS Frimley Integrated Care Board"
    assert names["QU9"] == "NHS Buckinghamshire, Oxfordshire and Berkshire West Integrated Care Board"


def test_south_east_2026_and_england() -> None:
    england = orgs.practices("2026")
    assert len(england) == 6129
    assert england["region_code"].nunique() == 7
    assert england["icb_code"].nunique() == 36
    se = orgs.area_practices("2026", region=SE)
    assert len(se) == 771
    assert se.groupby("icb_code").size().to_dict() == SE_ICBS_2026
    real = se[~se["pcn_code"].map(orgs.is_unallocated_pcn)]
    assert real["pcn_code"].nunique() + 1 == 223
    assert se["sub_icb_code"].nunique() == 11
    assert set(se["region_name"]) == {"South East"}
    names = dict(zip(se["icb_code"], se["icb_name"], strict=True))
    assert names["S0E4D"] == "NHS Thames Valley Integrated Care Board"
    assert names["S9B9J"] == "NHS Surrey and Sussex Integrated Care Board"
    assert "NHS Thames Valley ICB - U2G6B" in set(se["sub_icb_name"])


def test_2022_23_england() -> None:
    frame = orgs.practices("2022-23")
    assert len(frame) == 6378
    assert frame["icb_code"].nunique() == 42
    assert frame["region_code"].nunique() == 7
    assert sorted(frame["region_code"].unique()) == ["Y56", "Y58", "Y59", "Y60", "Y61", "Y62", "Y63"]


def test_practices_match_raw_mapping_files() -> None:
    """Codes at every level equal the raw files' codes (except the unallocated placeholder)."""
    sources = {
        "2022-23": ("data/qof/qof_2022-23/MAPPING_NHS_GEOGRAPHIES_2223.csv",
                    ("PCN_ODS_CODE", "SUB_ICB_ODS_CODE", "ICB_ODS_CODE", "REGION_ODS_CODE")),
        "2026": ("data/ods/gp-reg-pat-prac-map_2026-08/gp-reg-pat-prac-map.csv",
                 ("PCN_CODE", "SUB_ICB_LOCATION_CODE", "ICB_CODE", "COMM_REGION_CODE")),
    }
    for structure, (rel, cols) in sources.items():
        ours = orgs.practices(structure).set_index("practice_code")
        raw = raw_rows(rel)
        assert len(raw) == len(ours)
        for row in raw:
            mine = ours.loc[row["PRACTICE_CODE"]]
            pcn = row[cols[0]]
            expected_pcn = f"U-{row[cols[1]]}" if pcn == "U" else pcn
            assert (mine["pcn_code"], mine["sub_icb_code"], mine["icb_code"], mine["region_code"]) == (
                expected_pcn, row[cols[1]], row[cols[2]], row[cols[3]]
            )


# -- the chain to England ----------------------------------------------------------------------

@pytest.mark.parametrize("structure", orgs.STRUCTURES)
def test_every_practice_has_a_full_chain_to_england(structure: str) -> None:
    by_level = {lv: orgs.organisations(structure, lv).set_index("org_code") for lv in orgs.LEVELS}
    for level, frame in by_level.items():
        assert frame.index.is_unique, level
        assert not (frame["org_name"] == "").any(), level
    # Organisation parents close the tree: every parent exists one level up, ending at England.
    for level in orgs.LEVELS[:-1]:
        parents = by_level[level]["parent_code"]
        assert parents.isin(by_level[orgs.parent_level(level)].index).all(), level
    assert by_level["england"].index.tolist() == ["ENG"]
    assert by_level["england"]["org_name"].tolist() == ["England"]
    assert by_level["england"]["parent_code"].isna().all()
    # Each practice row: codes and names at every level agree with the organisation lists.
    frame = orgs.practices(structure)
    for level in ("practice", "pcn", "sub_icb", "icb", "region"):
        code_col, name_col = orgs.level_columns(level)
        orgs_at = by_level[level]
        assert frame[code_col].isin(orgs_at.index).all(), level
        assert (frame[name_col].to_numpy() == orgs_at.loc[frame[code_col], "org_name"].to_numpy()).all()
    # Practice's own sub-ICB → ICB → region → England.
    sub_icbs, icbs, regions = by_level["sub_icb"], by_level["icb"], by_level["region"]
    assert (sub_icbs.loc[frame["sub_icb_code"], "parent_code"].to_numpy() == frame["icb_code"].to_numpy()).all()
    assert (icbs.loc[frame["icb_code"], "parent_code"].to_numpy() == frame["region_code"].to_numpy()).all()
    assert (regions.loc[frame["region_code"], "parent_code"] == "ENG").all()


@pytest.mark.parametrize("structure", orgs.STRUCTURES)
def test_pcn_parent_is_majority_sub_icb(structure: str) -> None:
    frame = orgs.practices(structure)
    pcns = orgs.organisations(structure, "pcn").set_index("org_code")
    for pcn, group in frame.groupby("pcn_code"):
        counts = Counter(group["sub_icb_code"])
        top = max(counts.values())
        assert pcns.loc[pcn, "parent_code"] == min(c for c, n in counts.items() if n == top)
    spanning = frame.groupby("pcn_code")["sub_icb_code"].nunique()
    assert (spanning > 1).sum() == {"2022-23": 10, "2026": 11}[structure]


def test_unallocated_practices_keep_a_placeholder_pcn() -> None:
    frame = orgs.practices("2022-23")
    row = frame.set_index("practice_code").loc["G81002"]  # Grove Road Surgery, no PCN in 2022-23
    assert (row["pcn_code"], row["pcn_name"], row["sub_icb_code"]) == ("U-97R", "Unallocated - 97R", "97R")
    assert orgs.is_unallocated_pcn("U-97R")
    assert not orgs.is_unallocated_pcn("U89141")
    assert not orgs.is_unallocated_pcn(None)
    counts = {s: int(orgs.practices(s)["pcn_code"].map(orgs.is_unallocated_pcn).sum()) for s in orgs.STRUCTURES}
    assert counts == {"2022-23": 63, "2026": 52}


def test_levels() -> None:
    assert orgs.level_columns("practice") == ("practice_code", "practice_name")
    assert orgs.level_columns("sub_icb") == ("sub_icb_code", "sub_icb_name")
    assert orgs.level_columns("england") == (None, None)
    chain = ["practice"]
    while (parent := orgs.parent_level(chain[-1])) is not None:
        chain.append(parent)
    assert tuple(chain) == orgs.LEVELS


def test_organisations_counts() -> None:
    assert len(orgs.organisations("2026", "region")) == 7
    assert len(orgs.organisations("2026", "icb")) == 36
    assert len(orgs.organisations("2022-23", "icb")) == 42
    assert len(orgs.organisations("2022-23", "sub_icb")) == 106
    assert len(orgs.organisations("2026", "practice")) == 6129
    regions = orgs.organisations("2026", "region")
    assert list(regions.columns) == list(orgs.ORGANISATION_COLUMNS)
    assert set(regions["parent_code"]) == {"ENG"}


# -- choose_structure, area filter, codes ------------------------------------------------------

def test_choose_structure() -> None:
    only_2223 = sorted(set(orgs.practices("2022-23")["practice_code"]) - set(orgs.practices("2026")["practice_code"]))
    only_2026 = sorted(set(orgs.practices("2026")["practice_code"]) - set(orgs.practices("2022-23")["practice_code"]))
    assert only_2223 and only_2026
    assert orgs.choose_structure(only_2223[:3]) == "2022-23"
    assert orgs.choose_structure(only_2026[:3]) == "2026"
    assert orgs.choose_structure(only_2223[:3] + only_2026[:2]) == "2022-23"
    assert orgs.choose_structure(only_2223[:2] + only_2026[:2]) == "2026"  # tie -> newest
    assert orgs.choose_structure(["A81001"]) == "2026"  # in both -> newest
    assert orgs.choose_structure([]) == "2026"
    assert orgs.choose_structure(["ZZZZZZ"]) == "2026"
    assert orgs.choose_structure(iter([f" {only_2223[0].lower()} "])) == "2022-23"


def test_all_practice_codes() -> None:
    codes = orgs.all_practice_codes()
    assert isinstance(codes, frozenset)
    assert codes == set(orgs.practices("2022-23")["practice_code"]) | set(orgs.practices("2026")["practice_code"])
    assert len(codes) == 6402


def test_area_practices() -> None:
    assert len(orgs.area_practices("2026")) == 6129
    assert len(orgs.area_practices("2026", icb="s9b9j")) == 260
    assert len(orgs.area_practices("2026", region="Y59", icb="QKS")) == 175
    assert len(orgs.area_practices("2026", region="Y56", icb="QKS")) == 0
    one = orgs.area_practices("2022-23", practice="K81048")
    assert one["pcn_code"].tolist() == ["U62501"]
    assert len(orgs.area_practices("2022-23", sub_icb="D4U1Y")) == 71
    assert len(orgs.area_practices("2022-23", pcn="U-97R")) == 2
    with pytest.raises(ConfigurationError, match="no ICB|no icb"):
        orgs.area_practices("2026", icb="QNQ")  # Frimley no longer exists in 2026
    with pytest.raises(ConfigurationError):
        orgs.area_practices("2030", region=SE)


def test_results_are_copies() -> None:
    frame = orgs.practices("2026")
    frame.loc[:, "practice_name"] = "changed"
    assert (orgs.practices("2026")["practice_name"] != "changed").all()
    regs = orgs.register_sizes()
    regs.loc[:, "register"] = -1
    assert (orgs.register_sizes()["register"] >= 0).all()


# -- register sizes ----------------------------------------------------------------------------

def raw_mh(rel: str) -> dict[str, tuple[int, int]]:
    out = {}
    for row in raw_rows(rel):
        if row["GROUP_CODE"] == "MH":
            out[row["PRACTICE_CODE"]] = (int(float(row["REGISTER"])), int(float(row["PRACTICE_LIST_SIZE"])))
    return out


def test_register_sizes_2022_23_totals_from_raw_csv() -> None:
    raw = raw_mh("data/qof/qof_2022-23/PREVALENCE_2223.csv")
    mapping = raw_rows("data/qof/qof_2022-23/MAPPING_NHS_GEOGRAPHIES_2223.csv")
    se_codes = {r["PRACTICE_CODE"] for r in mapping if r["REGION_ODS_CODE"] == SE}
    raw_england = sum(reg for reg, _ in raw.values())
    raw_se = sum(reg for code, (reg, _) in raw.items() if code in se_codes)
    raw_se_list = sum(size for code, (_, size) in raw.items() if code in se_codes)
    assert (raw_england, raw_se, raw_se_list) == (621_898, 88_663, 9_694_276)  # shared SOURCES.md

    regs = orgs.register_sizes()
    assert list(regs.columns) == ["practice_code", "register", "list_size"]
    assert regs["register"].dtype == "int64" and regs["list_size"].dtype == "int64"
    assert int(regs["register"].sum()) == raw_england
    assert int(regs["list_size"].sum()) == sum(size for _, size in raw.values()) == 62_378_057
    se = regs.merge(orgs.area_practices("2022-23", region=SE), on="practice_code")
    assert int(se["register"].sum()) == raw_se
    assert {c: (r, s) for c, r, s in regs.itertuples(index=False)} == raw


def test_register_sizes_2020_21_from_raw_csv() -> None:
    raw = raw_mh("data/qof/qof_2020-21/PREVALENCE_2021_v2.csv")
    regs = orgs.register_sizes("2020-21")
    assert {c: (r, s) for c, r, s in regs.itertuples(index=False)} == raw
    assert int(regs["register"].sum()) == 574_227
    assert regs["practice_code"].is_unique


# -- derivation is reproducible ----------------------------------------------------------------

def test_package_data_rebuilds_byte_for_byte() -> None:
    from parity.orgs._build import build_files

    built = build_files(shared_dir())
    data = resources.files("parity.orgs").joinpath("data")
    for name, content in built.items():
        assert data.joinpath(name).read_bytes() == content, name
    assert data.joinpath("SOURCES.md").is_file()


def test_no_io_at_import() -> None:
    code = (
        "import parity.orgs, parity.orgs._data as d\n"
        "assert d.practice_rows.cache_info().currsize == 0\n"
        "assert d.organisation_rows.cache_info().currsize == 0\n"
        "assert d.register_rows.cache_info().currsize == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "tidy"), [
    ("ST GEORGE'S MEDICAL CENTRE", "St George's Medical Centre"),
    ("St George'S Medical Centre", "St George's Medical Centre"),
    ("DR S HUTCHINSON & PARTNERS", "Dr S Hutchinson & Partners"),
    ("DR AA ANSARI'S PRACTICE", "Dr AA Ansari's Practice"),
    ("Bmc Paston PCN", "BMC Paston PCN"),
    ("NORTH & EAST (IW) PCN", "North & East (IW) PCN"),
    ("THE HEDGES MEDICAL CENTRE (SA BAILEY)", "The Hedges Medical Centre (SA Bailey)"),
    ("BROMLEY BY BOW AND STEPNEY HEALTH CIC PCN", "Bromley by Bow and Stepney Health CIC PCN"),
    ("NHS Hampshire and Isle Of Wight ICB - 10R", "NHS Hampshire and Isle of Wight ICB - 10R"),
    ("NHS Thames Valley ICB - U2G6B", "NHS Thames Valley ICB - U2G6B"),
    ("STOCKTON-ON-TEES PCN", "Stockton-on-Tees PCN"),
    ("FCP SERVICE - BARNSLEY PCN", "FCP Service - Barnsley PCN"),
    ("THE UNIV OF NOTTINGHAM HEALTH SERV", "The Univ of Nottingham Health Serv"),
    ("SWB I3 PCN", "SWB I3 PCN"),
    ("TOGETHER4HEALTHCARE PCN", "Together4Healthcare PCN"),
    ("4TH AVENUE SURGERY", "4th Avenue Surgery"),
    ("O'BRIEN  SURGERY ", "O'Brien Surgery"),
    ("MCKENZIE HOUSE", "McKenzie House"),
    ("WALNUT ST MED CTR", "Walnut St Med Ctr"),
])
def test_tidy_name(raw: str, tidy: str) -> None:
    assert tidy_name(raw) == tidy
    assert tidy_name(tidy) == tidy


def test_official_mixed_case_names_unchanged() -> None:
    """2026 ICB, sub-ICB and region names are already mixed case: tidying keeps them as published."""
    raw = raw_rows("data/ods/gp-reg-pat-prac-map_2026-08/gp-reg-pat-prac-map.csv")
    frame = orgs.practices("2026").set_index("practice_code")
    for row in raw:
        mine = frame.loc[row["PRACTICE_CODE"]]
        assert mine["sub_icb_name"] == row["SUB_ICB_LOCATION_NAME"]
        assert mine["icb_name"] == row["ICB_NAME"]
        assert mine["region_name"] == row["COMM_REGION_NAME"]


def test_same_official_name_same_tidy_name_across_structures() -> None:
    a = orgs.practices("2022-23").set_index("practice_code")["practice_name"]
    b = orgs.practices("2026").set_index("practice_code")["practice_name"]
    both = a.index.intersection(b.index)
    same = a[both].str.upper() == b[both].str.upper()
    assert same.sum() > 5000
    assert (a[both][same] == b[both][same]).all()


# -- database ------------------------------------------------------------------------------------

def _db_practices(db: Database) -> pd.DataFrame:
    cols = ", ".join(orgs.PRACTICE_COLUMNS)
    rows = db.execute(f"SELECT {cols} FROM practices")
    frame = pd.DataFrame(rows, columns=list(orgs.PRACTICE_COLUMNS), dtype="str")
    return frame.sort_values(["structure", "practice_code"], ignore_index=True)


def test_write_practices_round_trip(any_db: Database) -> None:
    expected = pd.concat([orgs.practices(s) for s in orgs.STRUCTURES], ignore_index=True)
    expected = expected.sort_values(["structure", "practice_code"], ignore_index=True)
    assert orgs.write_practices(any_db) == len(expected) == 6378 + 6129
    pd.testing.assert_frame_equal(_db_practices(any_db), expected, check_dtype=False)
    # Replaces, never appends.
    assert orgs.write_practices(any_db) == len(expected)
    assert any_db.count("practices") == len(expected)
    counts = dict(any_db.execute(
        "SELECT icb_code, COUNT(*) FROM practices WHERE structure = '2026' AND region_code = 'Y59' "
        "GROUP BY icb_code"
    ))
    assert {k: int(v) for k, v in counts.items()} == SE_ICBS_2026


def test_write_practices_inside_caller_transaction(any_db: Database) -> None:
    from parity.db.bulk import insert_rows

    insert_rows(any_db, "practices", [{
        "structure": "old", "practice_code": "X00000", "practice_name": "Gone", "sub_icb_code": "X",
        "sub_icb_name": "X", "icb_code": "X", "icb_name": "X", "region_code": "X", "region_name": "X",
    }])
    with pytest.raises(RuntimeError, match="boom"), any_db.transaction():
        orgs.write_practices(any_db)
        raise RuntimeError("boom")
    assert any_db.count("practices") == 1  # rolled back with the caller's transaction
    with any_db.transaction():
        written = orgs.write_practices(any_db)
    assert any_db.count("practices") == written == 12507
    assert any_db.execute("SELECT COUNT(*) FROM practices WHERE structure = 'old'")[0][0] == 0
