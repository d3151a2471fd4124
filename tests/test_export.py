"""CSV and Excel exports (parity.reports.export)."""

from __future__ import annotations

import io
from datetime import date, datetime

import pandas as pd
from openpyxl import load_workbook

from parity.engine.base import normalise_status
from parity.reports.export import to_csv_bytes, to_xlsx_bytes, worklist_export_frame
from parity.reports.worklist import worklist
from parity.rules.registry import load_measure
from spec.timeline import NHS_NUMBERS

PHSMI = load_measure("phsmi")


def table() -> pd.DataFrame:
    return pd.DataFrame({
        "NHS number": [NHS_NUMBERS[0], NHS_NUMBERS[1]],
        "Age": pd.array([44, None], dtype="Int64"),
        "Next due": [date(2025, 4, 15), None],
        "Name": ["Zoë", "=HYPERLINK(\"http://example.invalid\")"],
        "Rate": [0.5, float("nan")],
    })


def sample_worklist() -> pd.DataFrame:
    """One patient with five of the six checks done on 2024-04-15 (smoking missing)."""
    row: dict[str, object] = {"nhs_number": NHS_NUMBERS[0], "practice_code": "A81001", "on_register": True,
                              "in_denominator": True}
    for c in PHSMI.checks:
        done = c.id != "smoking"
        row |= {c.id: done, f"{c.id}_status": "done" if done else "missing",
                f"{c.id}_date": date(2024, 4, 15) if done else None, f"{c.id}_value": None}
    row |= {"checks_done": 5, "all_six": False, "all_checks": False}
    status = normalise_status(pd.DataFrame([row]), PHSMI)
    patients = pd.DataFrame({"nhs_number": [NHS_NUMBERS[0]], "date_of_birth": [date(1980, 1, 1)], "sex": ["male"]})
    return worklist(status, patients, PHSMI, date(2025, 3, 31))


def test_csv_has_a_bom_iso_dates_and_round_trips_nhs_numbers_as_strings() -> None:
    data = to_csv_bytes(table())
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0] == "NHS number,Age,Next due,Name,Rate"
    assert "2025-04-15" in text and "Zoë" in text
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype={"NHS number": str})
    assert list(back["NHS number"]) == [NHS_NUMBERS[0], NHS_NUMBERS[1]]
    assert back.loc[0, "Next due"] == "2025-04-15" and pd.isna(back.loc[1, "Next due"])
    assert pd.isna(back.loc[1, "Age"]) and back.loc[0, "Age"] == 44


def test_xlsx_header_is_bold_and_frozen_with_typed_cells() -> None:
    ws = load_workbook(io.BytesIO(to_xlsx_bytes(table(), sheet="Worklist"))).active
    assert ws.title == "Worklist"
    assert [c.value for c in ws[1]] == ["NHS number", "Age", "Next due", "Name", "Rate"]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    nhs, age, due, name, rate = ws[2]
    assert nhs.value == NHS_NUMBERS[0] and nhs.data_type == "s"  # text, not a number
    assert age.value == 44
    assert due.is_date and due.value == datetime(2025, 4, 15)
    assert name.value == "Zoë"
    assert rate.value == 0.5
    formula_like = ws.cell(row=3, column=4)
    assert formula_like.data_type == "s" and formula_like.value.startswith("=HYPERLINK")  # never a formula
    assert ws.cell(row=3, column=2).value is None and ws.cell(row=3, column=3).value is None
    assert ws.column_dimensions["A"].width >= len("NHS number")


def test_xlsx_title_row_and_safe_sheet_name() -> None:
    ws = load_workbook(io.BytesIO(to_xlsx_bytes(table(), sheet="A81001: worklist [2025/03]", title="Worklist"))).active
    assert ws.title == "A81001_ worklist _2025_03_"
    assert ws["A1"].value == "Worklist" and ws["A1"].font.bold
    assert ws["A2"].value == "NHS number" and ws.freeze_panes == "A3"
    assert ws["A3"].value == NHS_NUMBERS[0]


def test_worklist_export_frame_has_human_column_names() -> None:
    out = worklist_export_frame(sample_worklist(), PHSMI)
    assert list(out.columns) == [
        "NHS number", "Age", "Sex", "Checks done", "Missing", "Declined", "Next due", "Due status",
        "BMI last done", "Blood pressure last done", "Lipids last done", "Glucose or HbA1c last done",
        "Alcohol last done", "Smoking status last done",
    ]
    row = out.iloc[0]
    assert row["NHS number"] == NHS_NUMBERS[0]
    assert row["Due status"] == "Overdue" and row["Missing"] == "Smoking status"
    assert row["BMI last done"] == date(2024, 4, 15)
    ws = load_workbook(io.BytesIO(to_xlsx_bytes(out, sheet="Worklist"))).active
    assert ws["G2"].is_date and ws["A2"].data_type == "s"
