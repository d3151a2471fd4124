"""qof-mh021 lipids: 24 months for lower-risk patients, 12 months for higher-risk ones
(QOF MH011 as used by MH021; clinical-spec.md §2.3; qof-mh021.toml; rules/model.py Criterion).

Every test starts from a lipid profile 18 months before as_of (inside 24 months, outside 12) and
adds one higher-risk criterion, which must switch the lipid window back to 12 months.
``phsmi`` always uses 12 months.
"""

from __future__ import annotations

import pytest

from spec.timeline import SERTRALINE_BNF, smi_patient

AS_OF = "2024-03-31"
LIPIDS_18_MONTHS_AGO = "2022-10-01"


def lower_risk(nhs_number: str = "9000000009"):
    """On the register, ethnicity White British, lipids 18 months ago, no risk factor."""
    return smi_patient(nhs_number).ethnicity("A").code("CHOL2_COD", LIPIDS_18_MONTHS_AGO, value=5.1)


def lipids(run, measure, patient):
    row = run(measure, AS_OF, patient).only()
    return row["lipids"], row["lipids_status"], row["lipids_date"]


def test_lower_risk_lipids_18_months_ago_done_under_qof(run):
    done, status, when = lipids(run, "qof-mh021", lower_risk())
    assert done
    assert status == "done"
    assert str(when) == LIPIDS_18_MONTHS_AGO


def test_lower_risk_lipids_18_months_ago_missing_under_phsmi(run):
    """phsmi.toml choice: 12 months for everyone."""
    done, status, _ = lipids(run, "phsmi", lower_risk())
    assert not done
    assert status == "missing"


@pytest.mark.parametrize(("day", "counted"), [("2022-03-31", False), ("2022-04-01", True)])
def test_lower_risk_24_month_window_edges(run, day, counted):
    """24 months to 2024-03-31 starts 2022-04-01."""
    p = smi_patient().ethnicity("A").code("CHOL2_COD", day, value=5.1)
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done is counted


def test_lower_risk_24_months_counts_towards_all_six(run):
    p = lower_risk()
    for cluster, value in (("BMIVAL_COD", 22.0), ("SYSBP_COD", 120), ("IFCCHBAM_COD", 38),
                           ("ALC_COD", None), ("NSMOK_COD", None)):
        p.code(cluster, "2023-09-01", value=value)
    row = run("qof-mh021", AS_OF, p).only()
    assert row["all_six"]
    assert run("phsmi", AS_OF, p).only()["checks_done"] == 5


# -- antipsychotic prescribing (BNF 0402) in the 6 months to as_of --------------------------------

def test_antipsychotic_within_6_months_is_higher_risk(run):
    done, status, _ = lipids(run, "qof-mh021", lower_risk().prescribed("2024-01-15"))
    assert not done
    assert status == "missing"


def test_antipsychotic_7_months_ago_is_lower_risk(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().prescribed("2023-08-31"))
    assert done


@pytest.mark.parametrize(("day", "higher"), [("2023-09-30", False), ("2023-10-01", True), ("2024-03-31", True)])
def test_antipsychotic_6_month_window_edges(run, day, higher):
    """6 months to 2024-03-31 starts 2023-10-01 (same window arithmetic as every check)."""
    done, _, _ = lipids(run, "qof-mh021", lower_risk().prescribed(day))
    assert done is not higher


def test_antipsychotic_after_as_of_ignored(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().prescribed("2024-04-01"))
    assert done


def test_non_antipsychotic_prescription_is_lower_risk(run):
    """BNF 0403 (antidepressant) is not BNF 0402."""
    done, _, _ = lipids(run, "qof-mh021", lower_risk().prescribed("2024-01-15", bnf=SERTRALINE_BNF))
    assert done


def test_prescription_without_bnf_code_is_lower_risk(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().prescribed("2024-01-15", bnf=None))
    assert done


# -- cardiovascular disease ever -------------------------------------------------------------------

@pytest.mark.parametrize("cluster", ["CHD_COD", "STRK_COD", "TIA_COD", "PAD_COD"])
def test_cardiovascular_disease_ever_is_higher_risk(run, cluster):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().code(cluster, "2001-01-01"))
    assert not done


def test_cardiovascular_disease_after_as_of_ignored(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().code("CHD_COD", "2024-04-01"))
    assert done


# -- unresolved diabetes / CKD 3-5 ----------------------------------------------------------------

def test_unresolved_diabetes_is_higher_risk(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().code("DM_COD", "2018-01-01"))
    assert not done


def test_resolved_diabetes_is_lower_risk(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().code("DM_COD", "2018-01-01").code("DMRES_COD", "2020-01-01"))
    assert done


def test_diabetes_after_resolution_is_higher_risk(run):
    p = lower_risk().code("DM_COD", "2018-01-01").code("DMRES_COD", "2020-01-01").code("DM_COD", "2022-01-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


def test_diabetes_and_resolution_same_day_is_unresolved(run):
    """rules/model.py Criterion ``unresolved``: same day counts as unresolved."""
    p = lower_risk().code("DM_COD", "2020-01-01").code("DMRES_COD", "2020-01-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


def test_resolution_only_is_lower_risk(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().code("DMRES_COD", "2020-01-01"))
    assert done


def test_ckd_3_to_5_is_higher_risk(run):
    done, _, _ = lipids(run, "qof-mh021", lower_risk().code("CKD_COD", "2019-01-01"))
    assert not done


def test_ckd_later_recoded_stage_1_2_is_lower_risk(run):
    p = lower_risk().code("CKD_COD", "2019-01-01").code("CKD1AND2_COD", "2021-01-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


def test_ckd_stage_1_2_after_as_of_ignored(run):
    p = lower_risk().code("CKD_COD", "2019-01-01").code("CKD1AND2_COD", "2024-04-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


# -- smoking: the latest smoking-status code ------------------------------------------------------

def test_latest_status_current_smoker_is_higher_risk(run):
    p = lower_risk().code("NSMOK_COD", "2015-01-01").code("LSMOK_COD", "2021-01-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


def test_later_ex_smoker_is_lower_risk(run):
    p = lower_risk().code("LSMOK_COD", "2019-01-01").code("EXSMOK_COD", "2021-01-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


def test_current_and_ex_smoker_same_day_is_higher_risk(run):
    """Parity reading of ``latest_is``: when the latest day has a current-smoker code, it holds,
    even if an ex-smoker code is on the same day (the sources are silent)."""
    p = lower_risk().code("LSMOK_COD", "2021-01-01").code("EXSMOK_COD", "2021-01-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


def test_current_smoker_after_as_of_ignored(run):
    p = lower_risk().code("EXSMOK_COD", "2019-01-01").code("LSMOK_COD", "2024-04-01")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


# -- overweight: latest BMI value, threshold by ethnicity -----------------------------------------

@pytest.mark.parametrize(
    ("ethnicity", "bmi", "higher"),
    [
        ("A", 24.0, False),   # White British: overweight from 25
        ("H", 24.0, True),    # Indian: overweight from 23
        ("H", 23.0, True),    # boundary: >= 23
        ("H", 22.9, False),
        ("A", 25.0, True),    # boundary: >= 25
        ("A", 24.9, False),
        ("B", 24.0, False),   # White Irish
        ("C", 24.0, False),   # Any other White background
        (None, 23.0, True),   # ethnicity not recorded: the general threshold 23
        ("A", 31.0, True),
    ],
)
def test_bmi_threshold_by_ethnicity(run, ethnicity, bmi, higher):
    p = lower_risk().ethnicity(ethnicity).code("BMIVAL_COD", "2023-01-10", value=bmi)
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done is not higher


def test_latest_bmi_value_decides(run):
    """An old high BMI followed by a normal one: lower risk."""
    p = lower_risk().code("BMIVAL_COD", "2019-01-01", value=31.0).code("BMIVAL_COD", "2023-01-10", value=22.0)
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


def test_bmi_code_without_value_does_not_hide_earlier_value(run):
    """``value_at_least`` reads the latest *recorded value*: a later BMI code with no value leaves
    the earlier value in force (Parity reading of rules/model.py Criterion)."""
    p = lower_risk().code("BMIVAL_COD", "2022-06-01", value=27.0).code("BMIVAL_COD", "2023-01-10")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


# Category codes without a value (QOF MH011, S8: "BMI >=30 whatever the ethnicity"; issue 11).
BMI_30_PLUS = 162864005      # Body mass index 30+ - obesity (BMIOBESE_COD)
BMI_40_PLUS = 408512008      # Body mass index 40+ - severely obese (BMIOBESE_COD)
BMI_25_29 = 162863004        # Body mass index 25-29 - overweight (BMIOVER_COD)
BMI_20_24 = 412768003        # Body mass index 20-24 - normal (BMI_COD only)


@pytest.mark.parametrize("code", [BMI_30_PLUS, BMI_40_PLUS])
@pytest.mark.parametrize("ethnicity", ["A", "H", None])
def test_bmi_30_plus_category_without_value_is_higher_risk(run, code, ethnicity):
    """A "BMI 30+" or "BMI 40+" code with no value puts anyone in the 12-month group."""
    p = lower_risk().ethnicity(ethnicity).snomed(code, "2023-01-10")
    done, status, _ = lipids(run, "qof-mh021", p)
    assert not done
    assert status == "missing"


def test_bmi_25_29_category_is_higher_risk_even_for_white(run):
    """25-29 meets the White threshold (>=25) as well as the general one (>=23)."""
    p = lower_risk().ethnicity("A").snomed(BMI_25_29, "2023-01-10")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


def test_normal_bmi_category_is_lower_risk(run):
    p = lower_risk().snomed(BMI_20_24, "2023-01-10")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


def test_later_normal_bmi_value_overrides_older_obese_category(run):
    """The latest BMI record decides: an obese category code followed by a BMI of 22 (White)."""
    p = lower_risk().snomed(BMI_30_PLUS, "2021-06-01").code("BMIVAL_COD", "2023-01-10", value=22.0)
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


def test_obese_category_after_normal_value_is_higher_risk(run):
    p = lower_risk().code("BMIVAL_COD", "2021-06-01", value=22.0).snomed(BMI_30_PLUS, "2023-01-10")
    done, _, _ = lipids(run, "qof-mh021", p)
    assert not done


def test_bmi_after_as_of_ignored(run):
    p = lower_risk().code("BMIVAL_COD", "2024-04-01", value=35.0)
    done, _, _ = lipids(run, "qof-mh021", p)
    assert done


# -- higher-risk patients still count lipids in 12 months ----------------------------------------

def test_higher_risk_lipids_in_12_months_done(run):
    p = smi_patient().code("CHD_COD", "2001-01-01").code("CHOL2_COD", "2023-06-01", value=4.9)
    done, _, when = lipids(run, "qof-mh021", p)
    assert done
    assert str(when) == "2023-06-01"
