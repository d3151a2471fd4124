"""parity.synth: a synthetic SMI population on real practices, written as canonical extract v1."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from nhs_number import is_valid as nhs_number_is_valid

from parity.codes import load_codelist
from parity.db.schema import EXTRACT_TABLES
from parity.errors import ConfigurationError
from parity.rules.registry import load_measure
from parity.synth import default_as_of, generate
from parity.synth import reference as ref
from parity.synth.nhs import check_digits, is_valid, nhs_numbers

AS_OF = date(2026, 9, 30)
TABLES = ("patients", "registrations", "events", "medications")
SE_TRUSTS = {"RX2", "RXY", "RW1", "R1C", "RWX", "RNU", "RXX"}


def codes_of(*clusters: str) -> set[int]:
    out: set[int] = set()
    for c in clusters:
        out |= {code.code for code in load_codelist(c).codes}
    return out


def read_csv_extract(folder: Path) -> dict[str, pd.DataFrame]:
    dtypes = {"nhs_number": str, "practice_code": str, "recorded_by": str, "bnf_code": str, "lsoa": str,
              "ethnicity": str, "sex": str, "unit": str}
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=dtypes, keep_default_na=False, na_values=[""])
            for t in TABLES}


@pytest.fixture(scope="module")
def icb_csv(tmp_path_factory: pytest.TempPathFactory):
    """About 2,000 people on the registers of Kent and Medway practices, CSV."""
    out = tmp_path_factory.mktemp("synth_icb")
    summary = generate(out, scale="icb", area="QKS", patients=2000, seed=11, as_of=AS_OF, fmt="csv")
    return summary, read_csv_extract(out)


@pytest.fixture(scope="module")
def register(icb_csv) -> pd.DataFrame:
    """People on the phsmi register on AS_OF with their six checks, computed directly with pandas."""
    _, t = icb_csv
    measure = load_measure("phsmi")
    ev = t["events"].assign(date=lambda d: pd.to_datetime(d["date"]))
    ev = ev[ev["date"] <= pd.Timestamp(AS_OF)]
    diag, rem = codes_of(*measure.register.diagnosis), codes_of(*measure.register.remission)
    smi = ev[ev["snomed_code"].isin(diag | rem)].assign(is_rem=lambda d: d["snomed_code"].isin(rem))
    latest_day = smi.groupby("nhs_number")["date"].transform("max")
    latest = smi[smi["date"] == latest_day].groupby("nhs_number")["is_rem"].min()  # diagnosis wins a tie
    diagnosed = set(latest[~latest].index)
    pat = t["patients"]
    alive = set(pat.loc[pat["date_of_death"].isna() | (pat["date_of_death"] > AS_OF.isoformat()), "nhs_number"])
    reg = t["registrations"]
    current = reg[(reg["start_date"] <= AS_OF.isoformat())
                  & (reg["end_date"].isna() | (reg["end_date"] >= AS_OF.isoformat()))]
    people = current[current["nhs_number"].isin(diagnosed & alive)][["nhs_number", "practice_code"]]
    window = ev[ev["date"] > pd.Timestamp(date(2025, 9, 30))]
    for check in measure.core:
        done = set(window.loc[window["snomed_code"].isin(codes_of(*check.done)), "nhs_number"])
        people[check.id] = people["nhs_number"].isin(done)
    people["all6"] = people[[c.id for c in measure.core]].all(axis=1)
    return people


def file_digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet"):
        a = generate(tmp_path / f"a_{fmt}", scale="practice", patients=300, seed=3, as_of=AS_OF, fmt=fmt)
        b = generate(tmp_path / f"b_{fmt}", scale="practice", patients=300, seed=3, as_of=AS_OF, fmt=fmt)
        assert a.rows == b.rows
        assert file_digests(a.out) == file_digests(b.out)
    c = generate(tmp_path / "c", scale="practice", patients=300, seed=4, as_of=AS_OF, fmt="csv")
    assert file_digests(c.out) != file_digests(tmp_path / "a_csv")


# --------------------------------------------------------------------------- shape of the extract


def test_columns_match_schema_csv_and_parquet(tmp_path: Path, icb_csv) -> None:
    summary, _ = icb_csv
    for t in TABLES:
        header = (summary.out / f"{t}.csv").read_text().split("\n", 1)[0]
        assert header.split(",") == EXTRACT_TABLES[t].column_names
    pq_out = generate(tmp_path / "pq", scale="practice", patients=200, seed=1, as_of=AS_OF, fmt="parquet").out
    for t in TABLES:
        assert pq.read_schema(pq_out / f"{t}.parquet").names == EXTRACT_TABLES[t].column_names
    assert sorted(p.name for p in pq_out.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)


def test_csv_dates_are_iso_days(icb_csv) -> None:
    summary, _ = icb_csv
    iso = re.compile(r"^\d{4}-\d{2}-\d{2}$")
    sample = (summary.out / "events.csv").read_text().splitlines()[1:2000]
    assert all(iso.match(line.split(",")[1]) for line in sample)


def test_extract_passes_ingest_validation(icb_csv) -> None:
    from parity.ingest import validate_extract

    summary, _ = icb_csv
    report = validate_extract(summary.out)
    assert report.problems == []
    assert report.counts["events"] == summary.events


# --------------------------------------------------------------------------- patients


def test_nhs_numbers_valid_unique_in_test_range(icb_csv) -> None:
    _, t = icb_csv
    numbers = t["patients"]["nhs_number"]
    assert numbers.is_unique
    assert numbers.str.fullmatch(r"9\d{9}").all()
    assert all(nhs_number_is_valid(n) for n in numbers)
    assert set(t["events"]["nhs_number"]) <= set(numbers)
    assert set(t["registrations"]["nhs_number"]) == set(numbers)


def test_nhs_number_generator() -> None:
    numbers = nhs_numbers(np.random.default_rng(0), 50_000)
    assert len(np.unique(numbers)) == 50_000
    assert numbers.min() >= 9_000_000_000 and numbers.max() <= 9_999_999_999
    assert is_valid(numbers).all()
    assert check_digits(np.array([943476591])).tolist() == [9]  # 9434765919 is NHS Digital's example


def test_demographics_are_plausible(icb_csv) -> None:
    _, t = icb_csv
    p = t["patients"]
    age = (pd.Timestamp(AS_OF) - pd.to_datetime(p["date_of_birth"])).dt.days / 365.25
    assert ((age >= 25) & (age < 75)).mean() > 0.7
    assert age.min() >= 14 and age.max() < 101
    assert 0.45 < (p["sex"] == "male").mean() < 0.6
    assert set(p["sex"]) <= {"male", "female", "intersex", "unknown"}
    assert set(p["ethnicity"].dropna()) <= set("ABCDEFGHJKLMNPRSZ")
    assert (p["ethnicity"] == "A").mean() > 0.5
    imd = p["imd_decile"].dropna()
    assert imd.between(1, 10).all() and (imd <= 5).mean() > 0.55  # skewed to deprived
    assert p["lsoa"].dropna().str.fullmatch(r"E01\d{6}").all()


# --------------------------------------------------------------------------- history


def test_events_never_after_as_of_and_span_three_years(icb_csv) -> None:
    _, t = icb_csv
    dates = t["events"]["date"]
    assert dates.max() <= AS_OF.isoformat()
    assert (dates >= "2023-10-01").mean() > 0.9
    assert (dates < "2023-10-01").any()  # diagnoses years earlier
    assert t["medications"]["date"].max() <= AS_OF.isoformat()


def test_moves_deaths_and_new_registrations(icb_csv) -> None:
    _, t = icb_csv
    reg = t["registrations"].sort_values(["nhs_number", "start_date"])
    two = reg[reg.duplicated("nhs_number", keep=False)]
    assert two["nhs_number"].nunique() > 20
    first, second = two.groupby("nhs_number").nth(0), two.groupby("nhs_number").nth(1)
    first, second = first.set_index("nhs_number"), second.set_index("nhs_number")
    assert (first["end_date"] < second.loc[first.index, "start_date"]).all()
    assert (first["practice_code"] != second.loc[first.index, "practice_code"]).all()
    # events continue across a move, recorded by the practice of the day
    ev = t["events"].merge(first[["practice_code"]], left_on="nhs_number", right_index=True)
    assert (ev["recorded_by"] == ev["practice_code"]).any()

    pat = t["patients"].set_index("nhs_number")
    dead = pat[pat["date_of_death"].notna()]
    assert len(dead) > 10
    last = reg.groupby("nhs_number").last()
    assert (last.loc[dead.index, "end_date"] == dead["date_of_death"]).all()
    ev_dead = t["events"].merge(dead[["date_of_death"]], left_on="nhs_number", right_index=True)
    assert (ev_dead["date"] <= ev_dead["date_of_death"]).all()
    assert (reg["start_date"] > "2023-10-01").sum() > 50  # joined during the three years


def test_remission_and_rediagnosis(icb_csv) -> None:
    _, t = icb_csv
    diag, rem = codes_of("MH_COD"), codes_of("MHREM_COD")
    ev = t["events"]
    smi = ev[ev["snomed_code"].isin(diag | rem)].sort_values(["nhs_number", "date"])
    assert not (ev["snomed_code"].isin(rem) & ~ev["snomed_code"].isin(rem - diag)).any()  # clear remission codes
    latest = smi.groupby("nhs_number").tail(1)
    assert latest["snomed_code"].isin(rem).sum() > 20  # in remission now
    rem_first = smi[smi["snomed_code"].isin(rem)].groupby("nhs_number")["date"].min()
    after = smi.merge(rem_first.rename("rem_day"), left_on="nhs_number", right_index=True)
    rediagnosed = after[(after["date"] > after["rem_day"]) & after["snomed_code"].isin(diag - rem)]
    assert rediagnosed["nhs_number"].nunique() > 3


def test_trust_recorded_checks_and_declines(icb_csv) -> None:
    _, t = icb_csv
    ev = t["events"]
    by_trust = ev[ev["recorded_by"].isin(SE_TRUSTS)]
    assert by_trust["recorded_by"].unique().tolist() == ["RXY"]  # Kent and Medway's trust
    assert by_trust["snomed_code"].isin(codes_of("SYSBP_COD", "CHOL2_COD", "IFCCHBAM_COD")).any()
    practices = set(t["registrations"]["practice_code"])
    assert set(ev["recorded_by"].dropna()) <= practices | SE_TRUSTS
    declined = codes_of("BPDEC_COD", "BMIDEC_COD", "CHOLDEC_COD", "GLUCDEC_COD", "SMOKDEC_COD")
    assert ev["snomed_code"].isin(declined).sum() > 20


def test_values_and_units(icb_csv) -> None:
    _, t = icb_csv
    ev = t["events"]
    bmi = ev[ev["snomed_code"].isin(codes_of("BMIVAL_COD"))]
    assert (bmi["unit"] == "kg/m2").all() and 28 < bmi["value"].mean() < 32
    sys_, dia = ev[ev["snomed_code"].isin(codes_of("SYSBP_COD"))], ev[ev["snomed_code"].isin(codes_of("DIABP_COD"))]
    assert (sys_["unit"] == "mmHg").all()
    pairs = sys_.merge(dia, on=["nhs_number", "date"], suffixes=("_s", "_d"))
    assert len(pairs) >= 0.95 * len(sys_) and (pairs["value_s"] > pairs["value_d"]).all()
    hba1c = ev[ev["snomed_code"].isin(codes_of("IFCCHBAM_COD"))]
    assert (hba1c["unit"] == "mmol/mol").all() and 35 < hba1c["value"].mean() < 50
    chol = ev[ev["snomed_code"].isin(codes_of("CHOL2_COD"))]
    assert (chol["unit"] == "mmol/L").all() and 4.6 < chol["value"].mean() < 5.4
    audit = ev[ev["snomed_code"].isin(codes_of("AUDITC_COD"))]
    assert audit["value"].between(0, 12).all()


def test_medications_mostly_antipsychotics(icb_csv) -> None:
    _, t = icb_csv
    meds = t["medications"]
    antipsychotic = meds[meds["bnf_code"].str.startswith("0402")]
    share = antipsychotic["nhs_number"].nunique() / t["patients"]["nhs_number"].nunique()
    assert 0.6 < share < 0.95
    assert (meds["dmd_code"] > 0).all()
    assert meds["bnf_code"].str.fullmatch(r"[0-9A-Z]{15}").all()


# --------------------------------------------------------------------------- calibration


def test_register_matches_target_and_summary(icb_csv, register) -> None:
    summary, _ = icb_csv
    assert summary.register == len(register)
    assert 1800 < summary.register < 2200
    assert summary.patients > summary.register


def test_check_rates_in_calibration_band(register) -> None:
    rates = register.drop(columns=["nhs_number", "practice_code"]).mean()
    assert 0.40 < rates["all6"] < 0.75  # South East ICB band (SDCS Q4 2023/24: SE 59%)
    for check in ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking"):
        assert rates["all6"] + 0.03 < rates[check] < 0.95
    assert rates["smoking"] > rates["lipids"] and rates["blood_pressure"] > rates["lipids"]
    # attenders get most checks: far more people have all six than independence would give
    assert rates["all6"] > 2 * np.prod([rates[c] for c in ("bmi", "blood_pressure", "lipids", "glucose",
                                                            "alcohol", "smoking")])


def test_icb_rates_fixed_per_icb_and_lower_in_earlier_years(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", scale="icb", area="QNX", patients=400, seed=1, as_of=AS_OF, fmt="parquet")
    ev = pd.read_parquet(a.out / "events.parquet")
    chol = codes_of("CHOL2_COD")
    per_year = [ev[ev["snomed_code"].isin(chol) & (ev["date"] > date(y - 1, 9, 30)) & (ev["date"] <= date(y, 9, 30))]
                ["nhs_number"].nunique() for y in (2024, 2025, 2026)]
    assert per_year[0] < per_year[2]
    assert ref.stable_unit("rate", "QNX") == ref.stable_unit("rate", "QNX")


# --------------------------------------------------------------------------- options


def test_noise_scales_volume_and_never_counts(tmp_path: Path) -> None:
    quiet = generate(tmp_path / "q", scale="practice", patients=300, seed=2, as_of=AS_OF, noise=0.0, fmt="parquet")
    loud = generate(tmp_path / "l", scale="practice", patients=300, seed=2, as_of=AS_OF, noise=1.0, fmt="parquet")
    assert loud.events > 2 * quiet.events
    assert loud.events / loud.register > 60
    used: set[int] = set()
    for m in ("phsmi", "qof-mh021", "extended-9"):
        for cluster in load_measure(m).clusters():
            used |= set(ref.cluster_ids(cluster) or ())
    noise_codes = {r.code for r in ref.noise_codes_raw()}
    loud_codes = set(pd.read_parquet(loud.out / "events.parquet")["snomed_code"])
    assert not (noise_codes & loud_codes & used)


def test_scale_defaults_and_errors(tmp_path: Path) -> None:
    s = generate(tmp_path / "p", scale="practice", patients=100, seed=1, as_of=AS_OF, fmt="parquet")
    assert s.practices == 1 and s.area is not None and s.counts == s.rows
    assert f"practice {s.area}" in s.describe()
    se = ref.resolve_scope("region", None, "2022-23")
    assert se.area == "Y59" and 85_000 < se.practices["register"].sum() < 92_000
    assert s.area == se.practices.sort_values("register").iloc[-1]["practice_code"]
    with pytest.raises(ConfigurationError):
        generate(tmp_path / "x", scale="icb", area="NOPE")
    with pytest.raises(ConfigurationError):
        generate(tmp_path / "x", scale="continent")
    with pytest.raises(ConfigurationError):
        generate(tmp_path / "x", scale="practice", fmt="xlsx")
    assert not (tmp_path / "x").exists()


def test_scale_registers_keeps_total_and_proportions() -> None:
    out = ref.scale_registers(np.array([100, 300, 600]), 50)
    assert out.sum() == 50 and out.tolist() == [5, 15, 30]
    assert ref.scale_registers(np.array([1, 2]), None).tolist() == [1, 2]


def test_default_as_of_is_last_quarter_end() -> None:
    assert default_as_of(date(2026, 11, 22)) == date(2026, 9, 30)
    assert default_as_of(date(2026, 1, 1)) == date(2025, 12, 31)
    assert default_as_of(date(2026, 3, 31)) == date(2025, 12, 31)
