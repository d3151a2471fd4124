"""The published NHS England series of SMI physical health checks (product.md M7), imported and rolled up.

Input: the long-format SDCS compilation ``Physical-Health-Checks-SMI_Raw_Data.xlsx`` (one sheet, a title
row, then the header ``Period, CCG Code, Question, Answer``), or a CSV with the same four columns. Every
row is validated before anything is written (all-or-nothing); problems name file, line (spreadsheet row
number), column and reason. A blank ``Answer`` means "not submitted" (the compilation has three such
organisation-quarters, e.g. 07M and 15A in Q3 2018/19): those rows are counted and not stored.

Period labels are Parity's ``YYYY-YY-Qn`` (financial year, quarter): ``2021-22-Q1`` is April–June 2021,
``2021-22-Q4`` is January–March 2022. The raw labels ``SMI-Q1-2021-2022`` are converted on import.

Storage: ``published_phc (period, period_end, source_code, question, value, sha256)`` with the raw
question names (``SMIRegister``, ``All6PHC``, ``BloodPressure``, ``BMIWeight``, ``BloodLipid``,
``BloodGlucose``, ``Alcohol``, ``Smoking``), and ``published_imports (imported_at, file_name, sha256,
rows)``. Re-importing the same file contents replaces that import; importing a different file replaces
the stored rows of every period the new file contains (the newest file wins for a period, so a period is
never counted twice).

Code mapping: see :mod:`parity.reports.published_map` (:func:`code_map` says how each code was mapped).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from parity.db import Database
from parity.errors import ConfigurationError, Problem, ValidationError
from parity.reports.disclosure import DisclosureControl
from parity.reports.published_map import MANUAL_SUCCESSORS, code_map, full_map

__all__ = [
    "CHECK_COLUMNS", "LEVELS", "MANUAL_SUCCESSORS", "QUESTIONS", "ImportResult", "code_map", "import_published",
    "parse_period", "period_end", "period_start", "periods", "rollup", "series", "unmapped_codes",
]

QUESTIONS: dict[str, str] = {
    "SMIRegister": "register",
    "All6PHC": "all_six",
    "BMIWeight": "bmi",
    "BloodPressure": "blood_pressure",
    "BloodLipid": "lipids",
    "BloodGlucose": "glucose",
    "Alcohol": "alcohol",
    "Smoking": "smoking",
}
"""Raw question name → output column."""

CHECK_COLUMNS: tuple[str, ...] = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")
LEVELS: tuple[str, ...] = ("sub_icb", "icb", "region", "england")
COUNT_COLUMNS: tuple[str, ...] = ("register", "all_six", *CHECK_COLUMNS)
OUTPUT_COLUMNS: tuple[str, ...] = ("org_code", "org_name", "register", "all_six", "percent", *CHECK_COLUMNS, "sources")
HEADER: tuple[str, ...] = ("Period", "CCG Code", "Question", "Answer")
MAX_PROBLEMS = 100
ENGLAND_CODE = "ENG"

_RAW_PERIOD = re.compile(r"SMI-Q([1-4])-(\d{4})-(\d{4})")
_LABEL = re.compile(r"(\d{4})-(\d{2})-Q([1-4])")
_CODE = re.compile(r"[A-Z0-9]{3,5}")
_INT = re.compile(r"\d+")


# -- periods ---------------------------------------------------------------------------------------


def parse_period(text: str) -> str:
    """A period label ``YYYY-YY-Qn`` from a raw label (``SMI-Q1-2021-2022``) or a label; ValueError if neither."""
    s = str(text).strip()
    m = _RAW_PERIOD.fullmatch(s)
    if m:
        quarter, first, second = int(m[1]), int(m[2]), int(m[3])
        if second != first + 1:
            raise ValueError(f"financial year {first}-{second} does not span consecutive years")
        return f"{first}-{second % 100:02d}-Q{quarter}"
    m = _LABEL.fullmatch(s)
    if m:
        first, second = int(m[1]), int(m[2])
        if second != (first + 1) % 100:
            raise ValueError(f"financial year {m[1]}-{m[2]} does not span consecutive years")
        return s
    raise ValueError(f"period {s!r} is neither like SMI-Q1-2021-2022 nor like 2021-22-Q1")


def _year_quarter(label: str) -> tuple[int, int]:
    label = parse_period(label)
    return int(label[:4]), int(label[-1])


def period_start(label: str) -> date:
    """First day of the quarter: 2021-22-Q1 → 2021-04-01, 2021-22-Q4 → 2022-01-01."""
    year, quarter = _year_quarter(label)
    month = 3 * quarter + 1
    return date(year + 1, 1, 1) if month > 12 else date(year, month, 1)


def period_end(label: str) -> date:
    """Last day of the quarter: 2021-22-Q1 → 2021-06-30, 2021-22-Q4 → 2022-03-31."""
    year, quarter = _year_quarter(label)
    if quarter == 4:
        return date(year + 1, 3, 31)
    if quarter == 3:
        return date(year, 12, 31)
    return date(year, 3 * quarter + 4, 1) - timedelta(days=1)


# -- reading and validating ----------------------------------------------------------------------


@dataclass
class ImportResult:
    """What one import stored."""

    file: str
    sha256: str
    rows: int
    blank: int
    periods: list[str] = field(default_factory=list)
    codes: int = 0
    replaced_rows: int = 0

    def describe(self) -> str:
        span = f"{self.periods[0]} to {self.periods[-1]}" if self.periods else "no periods"
        return (f"imported {self.rows} rows from {self.file} ({len(self.periods)} periods, {span}; "
                f"{self.codes} organisation codes; {self.blank} blank answers not stored; "
                f"{self.replaced_rows} previously stored rows replaced)")


def _raw_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(spreadsheet line number, cells) of every row of the file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
                yield number, list(row)
        finally:
            wb.close()
    else:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for number, row in enumerate(csv.reader(fh), start=1):
                yield number, list(row)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _answer(value: Any) -> int | None:
    """Integer answer; None for blank; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative count")
        return value
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if not value.is_integer() or value < 0:
            raise ValueError(f"{value!r} is not a non-negative whole number")
        return int(value)
    s = str(value).strip()
    if not s:
        return None
    if not _INT.fullmatch(s):
        raise ValueError(f"{s[:20]!r} is not a non-negative whole number")
    return int(s)


def _read(path: Path, name: str) -> tuple[list[tuple[str, str, str, int]], int]:
    """Validated (period, source_code, question, value) rows and the number of blank answers."""
    problems: list[Problem] = []
    out: list[tuple[str, str, str, int]] = []
    seen: dict[tuple[str, str, str], int] = {}
    blank = 0
    header_at: int | None = None
    cols: dict[str, int] = {}
    for number, cells in _raw_rows(path):
        if header_at is None:
            texts = [_text(c) for c in cells]
            if all(h in texts for h in HEADER):
                header_at = number
                cols = {h: texts.index(h) for h in HEADER}
            elif number >= 10:
                break
            continue
        if all(_text(c) == "" for c in cells):
            continue

        def cell(h: str, cells: list[Any] = cells, cols: dict[str, int] = cols) -> Any:
            i = cols[h]
            return cells[i] if i < len(cells) else None

        row_problems = len(problems)
        try:
            period = parse_period(_text(cell("Period")))
        except ValueError as exc:
            problems.append(Problem(name, number, "Period", str(exc)))
        code = _text(cell("CCG Code")).upper()
        if not _CODE.fullmatch(code):
            problems.append(Problem(name, number, "CCG Code", f"{code[:20]!r} is not an ODS CCG or sub-ICB code"))
        question = _text(cell("Question"))
        if question not in QUESTIONS:
            problems.append(Problem(name, number, "Question",
                                    f"unknown question {question[:30]!r}; expected one of {', '.join(QUESTIONS)}"))
        try:
            value = _answer(cell("Answer"))
        except ValueError as exc:
            problems.append(Problem(name, number, "Answer", str(exc)))
            value = None
        if len(problems) > row_problems:
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        key = (period, code, question)
        if key in seen:
            problems.append(Problem(name, number, "Question",
                                    f"{question} for {code} in {period} repeats line {seen[key]}"))
            continue
        seen[key] = number
        if value is None:
            blank += 1
            continue
        out.append((period, code, question, value))
    if header_at is None:
        raise ValidationError(f"{name}: no header row with columns {', '.join(HEADER)} in the first 10 rows",
                              [Problem(name, None, None, f"missing header {', '.join(HEADER)}")])
    if problems:
        raise ValidationError(f"{name}: {len(problems)} problem(s), nothing imported; first: {problems[0]}",
                              problems)
    if not out:
        raise ValidationError(f"{name}: no data rows", [Problem(name, None, None, "no data rows")])
    return out, blank


# -- storage --------------------------------------------------------------------------------------

_DDL = (
    "CREATE TABLE IF NOT EXISTS published_phc (period VARCHAR(10) NOT NULL, period_end DATE NOT NULL, "
    "source_code VARCHAR(10) NOT NULL, question VARCHAR(20) NOT NULL, value BIGINT NOT NULL, "
    "sha256 VARCHAR(64) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS published_imports (imported_at TIMESTAMP NOT NULL, file_name VARCHAR(255) NOT NULL, "
    "sha256 VARCHAR(64) NOT NULL, rows BIGINT NOT NULL)",
)


def ensure_tables(db: Database) -> None:
    """Create ``published_phc`` and ``published_imports`` if missing (idempotent)."""
    for ddl in _DDL:
        db.execute(ddl)


def _insert(db: Database, frame: pd.DataFrame) -> None:
    import pyarrow as pa

    db.dialect.insert_arrow(db, "published_phc", pa.Table.from_pandas(frame, preserve_index=False),
                            list(frame.columns))


def packaged_series() -> Path:
    """The published series shipped with Parity (``reports/data/SOURCES.md``), for the demo."""

    return Path(str(resources.files("parity.reports").joinpath("data", "Physical-Health-Checks-SMI_Raw_Data.xlsx")))


def import_published(db: Database, path: str | Path, *, name: str | None = None) -> ImportResult:
    """Validate and store a published SDCS file (xlsx or CSV); all-or-nothing. See the module docstring."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise ConfigurationError(f"no such file: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rows, blank = _read(path, name)
    frame = pd.DataFrame(rows, columns=["period", "source_code", "question", "value"])
    ends = {p: period_end(p) for p in frame["period"].unique()}
    frame.insert(1, "period_end", frame["period"].map(ends))
    frame["sha256"] = digest
    frame["value"] = frame["value"].astype("int64")
    labels = sorted(ends)
    ensure_tables(db)
    replaced = 0
    with db.transaction():
        replaced += int(db.execute("SELECT COUNT(*) FROM published_phc WHERE sha256 = ?", [digest])[0][0])
        db.execute("DELETE FROM published_phc WHERE sha256 = ?", [digest])
        db.execute("DELETE FROM published_imports WHERE sha256 = ?", [digest])
        marks = ", ".join("?" for _ in labels)
        replaced += int(db.execute(f"SELECT COUNT(*) FROM published_phc WHERE period IN ({marks})", labels)[0][0])
        db.execute(f"DELETE FROM published_phc WHERE period IN ({marks})", labels)
        _insert(db, frame)
        db.execute("INSERT INTO published_imports (imported_at, file_name, sha256, rows) VALUES (?, ?, ?, ?)",
                   [datetime.now(UTC).replace(tzinfo=None, microsecond=0), name[:255], digest, len(frame)])
    return ImportResult(file=name, sha256=digest, rows=len(frame), blank=blank, periods=labels,
                        codes=int(frame["source_code"].nunique()), replaced_rows=replaced)


def _stored_codes(db: Database) -> list[str]:
    ensure_tables(db)
    return [r[0] for r in db.execute("SELECT DISTINCT source_code FROM published_phc ORDER BY source_code")]


def unmapped_codes(db: Database) -> pd.DataFrame:
    """Stored source codes with no 2026 ICB: ``source_code, source_name, how, note, periods, register``."""
    frame = code_map(_stored_codes(db))
    bad = frame[frame["icb_code"].isna()][["source_code", "source_name", "how", "note"]].reset_index(drop=True)
    if bad.empty:
        return bad.assign(periods=pd.Series(dtype="str"), register=pd.Series(dtype="Int64"))
    marks = ", ".join("?" for _ in bad["source_code"])
    rows = db.execute(f"SELECT source_code, MIN(period), MAX(period), SUM(CASE WHEN question = 'SMIRegister' "
                      f"THEN value ELSE 0 END) FROM published_phc WHERE source_code IN ({marks}) GROUP BY source_code",
                      list(bad["source_code"]))
    info = {r[0]: (f"{r[1]} to {r[2]}", int(r[3])) for r in rows}
    bad["periods"] = [info.get(c, ("", 0))[0] for c in bad["source_code"]]
    bad["register"] = pd.array([info.get(c, ("", 0))[1] for c in bad["source_code"]], dtype="Int64")
    return bad


# -- roll-ups -------------------------------------------------------------------------------------


def periods(db: Database) -> list[str]:
    """Stored period labels, oldest first."""
    ensure_tables(db)
    return [r[0] for r in db.execute("SELECT DISTINCT period FROM published_phc ORDER BY period")]


def structure_for_period(label: str, structure: str | None = None) -> str:
    """``structure`` if given, else the one in force at the end of published period ``label`` (issue 11)."""
    from parity.reports.measures import structure_for

    return structure_for(period_end(label), structure)


def _wide(db: Database, period: str | None = None, structure: str = "2026") -> pd.DataFrame:
    """One row per (period, source_code) with the count columns and the mapping columns of ``structure``."""
    ensure_tables(db)
    sql = "SELECT period, source_code, question, value FROM published_phc"
    rows = db.execute(sql + " WHERE period = ?", [period]) if period else db.execute(sql)
    long = pd.DataFrame(rows, columns=["period", "source_code", "question", "value"])
    if long.empty:
        return pd.DataFrame(columns=["period", "source_code", *COUNT_COLUMNS, "mapped_sub_icb", "sub_icb_name",
                                     "icb_code", "icb_name", "region_code", "region_name"])
    long["question"] = long["question"].map(QUESTIONS)
    long["value"] = long["value"].astype("int64")
    wide = long.pivot_table(index=["period", "source_code"], columns="question", values="value",
                            aggfunc="sum").reset_index()
    for col in COUNT_COLUMNS:
        if col not in wide.columns:
            wide[col] = pd.NA
    mapping = code_map(sorted(wide["source_code"].unique()), structure)
    keep = ["source_code", "mapped_sub_icb", "sub_icb_name", "icb_code", "icb_name", "region_code", "region_name"]
    return wide.merge(mapping[keep], on="source_code", how="left")


def _group(wide: pd.DataFrame, level: str, keys: list[str]) -> pd.DataFrame:
    if level == "england":
        wide = wide.assign(org_code=ENGLAND_CODE, org_name="England")
    else:
        code_col = {"sub_icb": "mapped_sub_icb", "icb": "icb_code", "region": "region_code"}[level]
        name_col = {"sub_icb": "sub_icb_name", "icb": "icb_name", "region": "region_name"}[level]
        wide = wide[wide[code_col].notna()].assign(org_code=wide[code_col], org_name=wide[name_col])
    agg = {c: (c, lambda s: s.sum(min_count=1)) for c in COUNT_COLUMNS}
    out = wide.groupby([*keys, "org_code", "org_name"], dropna=False).agg(**agg, sources=("source_code", "nunique"))
    out = out.reset_index()
    for col in COUNT_COLUMNS:
        out[col] = out[col].astype("Int64")
    out["percent"] = pd.array([None if pd.isna(n) or pd.isna(d) or d == 0 else round(100.0 * int(n) / int(d), 1)
                               for n, d in zip(out["all_six"], out["register"], strict=True)], dtype="Float64")
    return out


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigurationError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    return level


def _control(df: pd.DataFrame, settings: Any) -> pd.DataFrame:
    if settings is None:
        return df
    control = DisclosureControl(settings.suppress_below, settings.round_to)
    return control.apply(df, COUNT_COLUMNS)


def rollup(db: Database, period: str, level: str, region: str | None = None, *,
           settings: Any = None, structure: str | None = None) -> pd.DataFrame:
    """One row per organisation at ``level`` (sub_icb | icb | region | england) for ``period``.

    Columns: ``org_code, org_name, register, all_six, percent, bmi, blood_pressure, lipids, glucose,
    alcohol, smoking, sources`` (``sources``: number of source codes summed). ``region`` keeps only
    organisations in that region of ``structure`` (default: in force at the period's end; for ``england`` it
    is ignored); ``attrs["structure"]`` names it. England sums every stored code,
    including unmapped ones (:func:`unmapped_codes`); the other levels only mapped codes, and
    ``attrs["unmapped"]`` lists the codes left out. With ``settings`` (``parity.settings.Settings``)
    disclosure control is applied as in :func:`parity.reports.measures.measure_table`.
    """
    _check_level(level)
    label = parse_period(period)
    structure = structure_for_period(label, structure)
    wide = _wide(db, label, structure)
    if wide.empty:
        if not periods(db):
            raise ConfigurationError("no published data imported; run 'parity published import FILE' first")
        raise ConfigurationError(f"no published data for period {label}; stored: {', '.join(periods(db)) or 'none'}")
    unmapped = sorted(wide.loc[wide["icb_code"].isna(), "source_code"])
    if region and level != "england":
        wide = wide[wide["region_code"] == region.strip().upper()]
    out = _group(wide, level, []).sort_values("org_code", ignore_index=True)[list(OUTPUT_COLUMNS)]
    out = _control(out, settings)
    out.attrs["unmapped"] = [] if level == "england" else unmapped
    out.attrs["structure"] = structure
    return out


def series(db: Database, level: str, org_code: str, *, settings: Any = None,
           structure: str | None = None) -> pd.DataFrame:
    """The time series of one organisation: ``period, period_end, register, all_six, percent`` and the checks.

    One structure for every period (default: the one in force at the end of the latest stored period), so
    the line follows the same organisation throughout. Empty frame if the organisation has no published
    figures (unknown code).
    """
    _check_level(level)
    stored = periods(db)
    structure = structure_for_period(stored[-1], structure) if stored else (structure or "2026")
    wide = _wide(db, structure=structure)
    out = _group(wide, level, ["period"]) if not wide.empty else pd.DataFrame(columns=["period", *OUTPUT_COLUMNS])
    code = ENGLAND_CODE if level == "england" else org_code.strip().upper()
    out = out[out["org_code"] == code].sort_values("period", ignore_index=True)
    out.insert(1, "period_end", [period_end(p) for p in out["period"]])
    out = out[["period", "period_end", "org_code", "org_name", "register", "all_six", "percent", *CHECK_COLUMNS,
               "sources"]]
    out = _control(out.reset_index(drop=True), settings)
    out.attrs["structure"] = structure
    return out


def org_name(level: str, code: str, structure: str = "2026") -> str | None:
    """Name of an organisation (sub-ICB, ICB, region) of ``structure``, or "England"; None if unknown."""
    if _check_level(level) == "england":
        return "England"
    frame = full_map(structure)
    col, name = {"sub_icb": ("mapped_sub_icb", "sub_icb_name"), "icb": ("icb_code", "icb_name"),
                 "region": ("region_code", "region_name")}[level]
    hit = frame[frame[col] == code.strip().upper()]
    return None if hit.empty else str(hit[name].iloc[0])
