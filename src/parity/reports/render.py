"""Terminal rendering of result tables (rich)."""

from __future__ import annotations

import shutil

import pandas as pd
from rich.console import Console
from rich.table import Table


def rich_table(df: pd.DataFrame, title: str, console: Console | None = None, caption: str | None = None) -> None:
    """Print ``df`` as a table; numbers right-aligned, missing values shown as a dash; ``caption`` is a
    footer line (what the figures used: structure, codelist release)."""
    # Wide enough for every column of a measure table even when output is piped (rich would use 80).
    console = console or Console(width=max(shutil.get_terminal_size((200, 24)).columns, 160))
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for col in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        if col.endswith("_name"):
            table.add_column(col, no_wrap=True, max_width=48, overflow="ellipsis")
        else:
            table.add_column(col, justify="right" if numeric else "left", no_wrap=True)
    for rec in df.itertuples(index=False):
        table.add_row(*[_cell(v) for v in rec])
    console.print(table)


def _cell(v: object) -> str:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
