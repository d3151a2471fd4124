"""Exports of report tables as CSV and Excel files (product.md M3 "exports (CSV, Excel)").

- CSV: UTF-8 with a byte-order mark (Excel reads a BOM-less file in the local code page and garbles
  non-ASCII names), CRLF line ends (RFC 4180), dates ``YYYY-MM-DD``, empty cells for missing values.
- Excel: one sheet with an optional title row, a bold frozen header row with a filter, column widths
  fitted to the contents, dates as real Excel dates, and text kept as text: NHS numbers stay strings
  (no leading digits lost, no 9.00E+09), and a value starting with ``=`` is never turned into a
  formula (OWASP "CSV injection"; openpyxl would otherwise write it as one).

Functions return bytes, for a web response or a file.
"""

from __future__ import annotations

import io
import math
from datetime import date, datetime
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from parity.rules.model import Measure

DATE_FORMAT = "yyyy-mm-dd"
_MAX_WIDTH = 60
_SHEET_FORBIDDEN = set("[]:*?/\\")  # characters Excel does not allow in a sheet name
_SHEET_MAX = 31  # Excel's limit on sheet name length

DUE_STATUS_LABELS: dict[str, str] = {"overdue": "Overdue", "due_soon": "Due soon", "up_to_date": "Up to date"}


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as CSV bytes: UTF-8 with BOM, header row, CRLF, ISO dates, no index."""
    out = df.copy()
    for col in out.columns:
        out[col] = [_csv_value(v) for v in out[col]]
    text = out.to_csv(index=False, lineterminator="\r\n")
    return text.encode("utf-8-sig")


def to_xlsx_bytes(df: pd.DataFrame, sheet: str, title: str | None = None) -> bytes:
    """``df`` as an Excel workbook with one sheet named ``sheet`` (made safe for Excel).

    With ``title``, row 1 holds it in bold and the header is row 2; otherwise the header is row 1.
    """
    wb = Workbook()
    ws = wb.active
    ws.title = _sheet_name(sheet)
    header_row = 1
    if title:
        cell = ws.cell(row=1, column=1)
        _set(cell, str(title))
        cell.font = Font(bold=True, size=14)
        header_row = 2

    bold = Font(bold=True)
    widths = []
    for j, name in enumerate(df.columns, start=1):
        cell = ws.cell(row=header_row, column=j)
        _set(cell, str(name))
        cell.font = bold
        widths.append(len(str(name)))

    for i, values in enumerate(df.itertuples(index=False, name=None), start=header_row + 1):
        for j, raw in enumerate(values, start=1):
            value = _xlsx_value(raw)
            if value is None:
                continue
            cell = ws.cell(row=i, column=j)
            _set(cell, value)
            if isinstance(value, date | datetime):
                cell.number_format = DATE_FORMAT if not isinstance(value, datetime) else "yyyy-mm-dd hh:mm"
                width = len(DATE_FORMAT) if not isinstance(value, datetime) else 16
            elif isinstance(value, str):
                cell.number_format = "@"  # text: Excel keeps NHS numbers and codes as typed
                width = len(value)
            else:
                width = len(str(value))
            widths[j - 1] = max(widths[j - 1], width)

    for j, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(width + 2, _MAX_WIDTH)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    if len(df.columns):
        last = f"{get_column_letter(len(df.columns))}{header_row + len(df)}"
        ws.auto_filter.ref = f"A{header_row}:{last}"

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def worklist_export_frame(df: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """A worklist (``parity.reports.worklist.worklist``) with the columns people read, in order:
    ``NHS number, Age, Sex, Checks done, Missing, Declined, Next due, Due status``, then
    ``<check label> last done`` for each check of ``measure``."""
    out = pd.DataFrame({
        "NHS number": df["nhs_number"].astype(str).astype(object),
        "Age": df["age"],
        "Sex": df["sex"],
        "Checks done": df["checks_done"],
        "Missing": df["missing"],
        "Declined": df["declined"],
        "Next due": df["next_due"],
        "Due status": df["due_status"].map(lambda s: DUE_STATUS_LABELS.get(s, s)),
    })
    for c in measure.checks:
        out[f"{c.label} last done"] = df[f"{c.id}_date"].astype(object)
    return out.reset_index(drop=True)


# -- helpers ----------------------------------------------------------------------------------


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _plain(v: Any) -> Any:
    """numpy and pandas scalars as Python values; missing as None."""
    if _missing(v):
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    elif hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    if _missing(v):
        return None
    if isinstance(v, datetime) and (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
        return v.date()
    return v


def _csv_value(v: Any) -> Any:
    v = _plain(v)
    if isinstance(v, datetime):
        return v.isoformat(sep=" ", timespec="minutes")
    if isinstance(v, date):
        return v.isoformat()
    return v


def _xlsx_value(v: Any) -> Any:
    v = _plain(v)
    if v is None or isinstance(v, bool | int | float | str | date | datetime):
        return v
    return str(v)


def _set(cell: Any, value: Any) -> None:
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the text starts with


def _sheet_name(name: str) -> str:
    clean = "".join("_" if ch in _SHEET_FORBIDDEN else ch for ch in str(name)).strip("'").strip()
    return clean[:_SHEET_MAX] or "Sheet1"
