"""The practice worklist (parity.reports.worklist): categories, due dates, order and filters.

Most tests build a small status frame by hand (the engine's output contract, parity.engine.base), so
each case reads as "this patient has these checks"; one runs the real engine end to end.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import nhs_number
import pandas as pd
import pytest

from parity.engine.base import normalise_status, status_columns
from parity.errors import ConfigurationError
from parity.reports.worklist import (
    DUE_SOON_DAYS,
    WorklistFilter,
    apply_filter,
    due_date,
    months_after,
    worklist,
    worklist_summary,
)
from parity.rules.model import CORE_CHECKS, Measure
from parity.rules.registry import load_measure
from spec.timeline import NHS_NUMBERS, dataset, smi_patient, with_checks

AS_OF = date(2025, 3, 31)
DONE_ON = date(2024, 4, 15)  # inside the window of AS_OF (2024-04-01 .. 2025-03-31)
PHSMI = load_measure("phsmi")
QOF = load_measure("qof-mh021")


def status_frame(measure: Measure, *rows: dict[str, Any]) -> pd.DataFrame:
    """A status frame: each row names its ``done`` checks ({id: date}) and ``declined`` check ids."""
    records = []
    for r in rows:
        done: dict[str, date] = r.get("done", {})
        declined: tuple[str, ...] = r.get("declined", ())
        rec: dict[str, Any] = {
            "nhs_number": r["nhs_number"],
            "practice_code": r.get("practice", "A81001"),
            "on_register": True,
            "in_denominator": r.get("in_denominator", True),
        }
        for c in measure.checks:
            status = "done" if c.id in done else ("declined" if c.id in declined else "missing")
            rec[c.id] = status == "done"
            rec[f"{c.id}_status"] = status
            rec[f"{c.id}_date"] = done.get(c.id)
            rec[f"{c.id}_value"] = None
        rec["checks_done"] = sum(c in done for c in CORE_CHECKS)
        rec["all_six"] = rec["in_denominator"] and rec["checks_done"] == len(CORE_CHECKS)
        rec["all_checks"] = rec["in_denominator"] and all(c.id in done for c in measure.checks)
        records.append(rec)
    return normalise_status(pd.DataFrame(records, columns=status_columns(measure)), measure)


def people(*nhs: str, born: date = date(1980, 1, 1), sex: str = "female") -> pd.DataFrame:
    return pd.DataFrame({"nhs_number": list(nhs), "date_of_birth": [born] * len(nhs), "sex": [sex] * len(nhs)})


def first_n(n: int, on: date = DONE_ON) -> dict[str, date]:
    """The first ``n`` core checks done on ``on``."""
    return dict.fromkeys(CORE_CHECKS[:n], on)


def by_nhs(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["nhs_number"]: r for r in df.to_dict("records")}


def test_test_nhs_numbers_are_valid_and_in_the_test_range() -> None:
    for n in NHS_NUMBERS:
        assert nhs_number.is_valid(n) and 9000000000 <= int(n) <= 9999999999


# -- categories ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("done", "category"), [
    (0, "incomplete"), (3, "incomplete"), (4, "near_miss"), (5, "near_miss"), (6, "complete"),
])
def test_category_boundaries(done: int, category: str) -> None:
    nhs = NHS_NUMBERS[0]
    wl = worklist(status_frame(PHSMI, {"nhs_number": nhs, "done": first_n(done)}), people(nhs), PHSMI, AS_OF)
    row = wl.iloc[0]
    assert row["checks_done"] == done
    assert row["category"] == category


def test_missing_lists_labels_of_core_checks_not_done_in_measure_order() -> None:
    nhs = NHS_NUMBERS[0]
    done = {"bmi": DONE_ON, "glucose": DONE_ON, "smoking": DONE_ON}
    wl = worklist(status_frame(PHSMI, {"nhs_number": nhs, "done": done, "declined": ("lipids",)}),
                  people(nhs), PHSMI, AS_OF)
    row = wl.iloc[0]
    assert row["missing"] == "Blood pressure, Lipids, Alcohol"
    assert row["declined"] == "Lipids"
    assert row["lipids_status"] == "declined"


def test_only_patients_in_the_denominator_are_listed() -> None:
    a, b = NHS_NUMBERS[:2]
    status = status_frame(PHSMI, {"nhs_number": a}, {"nhs_number": b, "in_denominator": False})
    wl = worklist(status, people(a, b), PHSMI, AS_OF)
    assert list(wl["nhs_number"]) == [a]


def test_age_in_whole_years_on_as_of_and_sex() -> None:
    a, b, c = NHS_NUMBERS[:3]
    pts = pd.concat([
        people(a, born=date(1980, 4, 1), sex="male"),  # birthday tomorrow: still 44
        people(b, born=date(1980, 3, 31)),  # birthday today: 45
    ])
    wl = by_nhs(worklist(status_frame(PHSMI, *({"nhs_number": n} for n in (a, b, c))), pts, PHSMI, AS_OF))
    assert (wl[a]["age"], wl[a]["sex"]) == (44, "male")
    assert (wl[b]["age"], wl[b]["sex"]) == (45, "female")
    assert pd.isna(wl[c]["age"]) and wl[c]["sex"] is None  # no patients row


# -- due dates ----------------------------------------------------------------------------------


def test_a_check_done_on_2024_04_15_is_due_on_2025_04_15() -> None:
    nhs = NHS_NUMBERS[0]
    wl = worklist(status_frame(PHSMI, {"nhs_number": nhs, "done": {"bmi": DONE_ON}}), people(nhs), PHSMI, AS_OF)
    row = wl.iloc[0]
    assert row["bmi_date"] == DONE_ON
    assert row["bmi_due"] == date(2025, 4, 15)
    # on the due date the check has left the window; the day before it still counts
    window = PHSMI.check("bmi").window
    assert window.start(date(2025, 4, 14)) <= DONE_ON < window.start(date(2025, 4, 15))


def test_missing_check_is_due_now_and_the_patient_is_overdue() -> None:
    nhs = NHS_NUMBERS[0]
    wl = worklist(status_frame(PHSMI, {"nhs_number": nhs, "done": first_n(5)}), people(nhs), PHSMI, AS_OF)
    row = wl.iloc[0]
    assert row["smoking_status"] == "missing" and row["smoking_due"] is None
    assert row["next_due"] == AS_OF
    assert row["due_status"] == "overdue"


def test_due_soon_is_inclusive_at_30_days() -> None:
    assert DUE_SOON_DAYS == 30
    a, b = NHS_NUMBERS[:2]
    status = status_frame(
        PHSMI,
        {"nhs_number": a, "done": first_n(6, date(2024, 4, 30))},  # due 2025-04-30 = AS_OF + 30 days
        {"nhs_number": b, "done": first_n(6, date(2024, 5, 1))},  # due 2025-05-01 = AS_OF + 31 days
    )
    wl = by_nhs(worklist(status, people(a, b), PHSMI, AS_OF))
    assert (wl[a]["next_due"], wl[a]["due_status"]) == (date(2025, 4, 30), "due_soon")
    assert (wl[b]["next_due"], wl[b]["due_status"]) == (date(2025, 5, 1), "up_to_date")


def test_next_due_is_the_earliest_due_check() -> None:
    nhs = NHS_NUMBERS[0]
    done = {**first_n(6, date(2024, 12, 1)), "alcohol": date(2024, 6, 2)}
    row = worklist(status_frame(PHSMI, {"nhs_number": nhs, "done": done}), people(nhs), PHSMI, AS_OF).iloc[0]
    assert row["next_due"] == date(2025, 6, 2)
    assert row["due_status"] == "up_to_date"


def test_due_dates_use_the_rules_month_arithmetic_at_month_ends() -> None:
    bmi = PHSMI.check("bmi")
    assert months_after(date(2024, 2, 29), 12) == date(2025, 2, 28)
    # the window of 2025-02-28 starts on 2024-02-29, so a check done that day is due on 1 March
    assert due_date(bmi, date(2024, 2, 29), date(2025, 1, 31)) == date(2025, 3, 1)
    assert due_date(bmi, date(2024, 3, 31), date(2025, 1, 31)) == date(2025, 3, 31)
    assert due_date(bmi, None, date(2025, 1, 31)) is None


def test_lower_risk_lipids_use_the_default_window_unless_the_status_proves_the_longer_one() -> None:
    lipids = QOF.check("lipids")
    assert lipids.window.months == 12 and lipids.lower_risk is not None and lipids.lower_risk.months == 24
    # done inside 12 months: we cannot tell who is lower risk, so remind at 12 months (conservative)
    assert due_date(lipids, date(2024, 10, 1), AS_OF) == date(2025, 10, 1)
    # done 18 months ago and still counted: only the 24-month window allows that
    assert due_date(lipids, date(2023, 10, 1), AS_OF) == date(2025, 10, 1)
    assert due_date(lipids, date(2023, 9, 1), AS_OF) == date(2025, 9, 1)


# -- order ------------------------------------------------------------------------------------


def test_near_misses_first_then_fewer_checks_then_complete_patients_soonest_due() -> None:
    n0, n3, n4, n5, n6_late, n6_soon, n5b = NHS_NUMBERS[:7]
    status = status_frame(
        PHSMI,
        {"nhs_number": n6_late, "done": first_n(6, date(2024, 12, 1))},
        {"nhs_number": n0},
        {"nhs_number": n3, "done": first_n(3)},
        {"nhs_number": n6_soon, "done": first_n(6, date(2024, 4, 20))},
        {"nhs_number": n5b, "done": first_n(5)},
        {"nhs_number": n4, "done": first_n(4)},
        {"nhs_number": n5, "done": first_n(5)},
    )
    wl = worklist(status, people(n0, n3, n4, n5, n6_late, n6_soon, n5b), PHSMI, AS_OF)
    assert list(wl["nhs_number"]) == [n5, n5b, n4, n3, n0, n6_soon, n6_late]
    assert list(wl["category"]) == ["near_miss"] * 3 + ["incomplete"] * 2 + ["complete"] * 2


def test_columns() -> None:
    wl = worklist(status_frame(PHSMI), people(), PHSMI, AS_OF)
    per_check = [f"{c}_{suffix}" for c in CORE_CHECKS for suffix in ("status", "date", "due")]
    assert list(wl.columns) == [
        "nhs_number", "practice_code", "age", "sex", "checks_done", "missing", "declined", "category",
        *per_check, "next_due", "due_status",
    ]
    assert wl.empty


# -- filters and summary ------------------------------------------------------------------------


@pytest.fixture
def sample() -> pd.DataFrame:
    a, b, c, d = NHS_NUMBERS[:4]
    status = status_frame(
        PHSMI,
        {"nhs_number": a, "done": first_n(6)},
        {"nhs_number": b, "done": first_n(5), "declined": ("smoking",)},
        {"nhs_number": c, "done": first_n(4)},
        {"nhs_number": d, "done": first_n(2), "practice": "A81017"},
    )
    pts = pd.DataFrame({
        "nhs_number": [a, b, c, d],
        "date_of_birth": [date(1950, 1, 1), date(1990, 1, 1), date(1970, 1, 1), date(2000, 1, 1)],
        "sex": ["female", "male", "female", "male"],
    })
    return worklist(status, pts, PHSMI, AS_OF)


def test_filter_by_category_due_status_missing_check_and_declined(sample: pd.DataFrame) -> None:
    a, b, c, d = NHS_NUMBERS[:4]
    assert list(apply_filter(sample, WorklistFilter(category="near_miss"))["nhs_number"]) == [b, c]
    assert list(apply_filter(sample, WorklistFilter(due_status="overdue"))["nhs_number"]) == [b, c, d]
    assert list(apply_filter(sample, WorklistFilter(missing_check="alcohol"))["nhs_number"]) == [c, d]
    assert list(apply_filter(sample, WorklistFilter(missing_check="smoking"))["nhs_number"]) == [b, c, d]
    assert list(apply_filter(sample, WorklistFilter(declined_only=True))["nhs_number"]) == [b]
    both = WorklistFilter(category="near_miss", missing_check="alcohol")
    assert list(apply_filter(sample, both)["nhs_number"]) == [c]


def test_search_by_nhs_number_prefix_ignores_spaces(sample: pd.DataFrame) -> None:
    a = NHS_NUMBERS[0]  # 9000000009
    assert list(apply_filter(sample, WorklistFilter(search="900 000 0009"))["nhs_number"]) == [a]
    assert len(apply_filter(sample, WorklistFilter(search="9000"))) == 4
    assert apply_filter(sample, WorklistFilter(search="8")).empty
    assert len(apply_filter(sample, WorklistFilter(search="  "))) == 4


def test_sort_by_a_column_then_nhs_number(sample: pd.DataFrame) -> None:
    a, b, c, d = NHS_NUMBERS[:4]
    assert list(apply_filter(sample, WorklistFilter(sort="age"))["nhs_number"]) == [d, b, c, a]
    assert list(apply_filter(sample, WorklistFilter(sort="age", descending=True))["nhs_number"]) == [a, c, b, d]
    assert list(apply_filter(sample, WorklistFilter(sort="practice_code"))["nhs_number"]) == [a, b, c, d]
    assert list(apply_filter(sample, WorklistFilter(sort="priority"))["nhs_number"]) == [b, c, d, a]
    assert list(apply_filter(sample, WorklistFilter(sort="nhs_number", descending=True))["nhs_number"]) == [
        d, c, b, a,
    ]


@pytest.mark.parametrize(("bad", "parameter"), [
    ({"category": "nearly"}, "category"),
    ({"due_status": "late"}, "due_status"),
    ({"missing_check": "weight"}, "missing_check"),
    ({"sort": "date_of_birth"}, "sort"),
    ({"search": "9000000009x"}, "search"),
    ({"search": "90000000091"}, "search"),
    ({"descending": "yes"}, "descending"),
])
def test_a_bad_filter_names_the_parameter_without_echoing_it(
    sample: pd.DataFrame, bad: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        apply_filter(sample, WorklistFilter(**bad))
    message = str(err.value)
    assert message.startswith(parameter)
    assert str(next(iter(bad.values()))) not in message


def test_summary_counts(sample: pd.DataFrame) -> None:
    assert worklist_summary(sample) == {
        "patients": 4, "complete": 1, "near_miss": 2, "incomplete": 1,
        "overdue": 3, "due_soon": 1, "up_to_date": 0,  # the complete patient falls due on 2025-04-15
    }
    assert worklist_summary(sample.iloc[0:0])["patients"] == 0


# -- end to end -----------------------------------------------------------------------------------


def test_worklist_from_the_engine_and_the_database(duckdb_db: Any) -> None:
    from parity.engine.ibis_engine import IbisEngine

    a, b = NHS_NUMBERS[:2]
    ds = dataset(
        with_checks(smi_patient(a), "2024-06-01"),
        with_checks(smi_patient(b).born("1990-06-15"), "2024-06-01", ("bmi", "blood_pressure", "lipids", "glucose")),
    )
    ds.write(duckdb_db)
    status = IbisEngine(duckdb_db).patient_status(PHSMI, AS_OF)
    patients = duckdb_db.ibis.table("patients").to_pandas()
    wl = by_nhs(worklist(status, patients, PHSMI, AS_OF))
    assert wl[a]["category"] == "complete" and wl[a]["next_due"] == date(2025, 6, 1)
    assert wl[b]["category"] == "near_miss" and wl[b]["missing"] == "Alcohol, Smoking status"
    assert wl[b]["age"] == 34 and wl[a]["age"] == 45
    assert wl[b]["bmi_due"] == date(2025, 6, 1)
