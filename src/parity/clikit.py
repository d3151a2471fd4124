"""What every ``parity`` command group shares: output formats, levels, "today", and printing a frame.

Kept apart from ``parity.cli`` so command groups in other packages (``parity.interop.cli``,
``parity.care.cli``) use the same options without importing the whole command line.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import StrEnum
from typing import Annotated

import typer


class OutFormat(StrEnum):
    csv = "csv"
    json = "json"
    table = "table"


class Level(StrEnum):
    practice = "practice"
    pcn = "pcn"
    sub_icb = "sub_icb"
    icb = "icb"
    region = "region"
    england = "england"


#: ``Level`` or ``all`` (every level, each row naming its level): ``parity measure --level``.
MeasureLevel = StrEnum("MeasureLevel", {**{level.name: level.value for level in Level}, "all": "all"})


DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", help="postgresql://… or a DuckDB file path [env: PARITY_DATABASE_URL; "
                                    "default ./parity-data/parity.duckdb]"),
]


def today() -> date:
    """Today, or ``PARITY_TODAY`` (lets tests and demos pin "today"): ``parity.dates.today``."""
    from parity.dates import today as pinned_today

    return pinned_today()


def emit(df: object, fmt: OutFormat, title: str, metadata: dict[str, str] | None = None) -> None:
    """Print a frame as CSV, JSON records or a terminal table.

    ``metadata`` (what a figure used: measure, reporting date, structure, codelist release) goes where
    each format keeps it: ``{"metadata": …, "rows": […]}`` in JSON, a footer under the table, and one
    column per item at the end of CSV rows (so a saved file still says which release made it).
    """
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    if fmt is OutFormat.csv:
        out = df
        if metadata:
            out = df.copy()
            for key, value in metadata.items():
                if key not in out.columns:
                    out[key] = value
        sys.stdout.write(to_csv(out))
    elif fmt is OutFormat.json:
        records = json.loads(df.to_json(orient="records", date_format="iso"))
        payload: object = {"metadata": metadata, "rows": records} if metadata else records
        sys.stdout.write(json.dumps(payload, indent=1) + "\n")
    else:
        from parity.reports.render import rich_table

        footer = " · ".join(f"{k.replace('_', ' ')}: {v}" for k, v in (metadata or {}).items()) or None
        rich_table(df, title, caption=footer)


def to_csv(df: object) -> str:
    """CSV with booleans as ``true``/``false``."""
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "true", False: "false"})
    return out.to_csv(index=False)
