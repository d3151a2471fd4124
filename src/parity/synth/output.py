"""Write extract tables in batches: CSV appends or Parquet row groups, renamed into place at the end."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = {"csv": ".csv", "parquet": ".parquet"}


class TableWriter:
    """One extract file, written batch by batch to a temporary name and renamed on ``commit``."""

    def __init__(self, out: Path, name: str, schema: pa.Schema, fmt: str) -> None:
        self.final = out / f"{name}{FORMATS[fmt]}"
        self.partial = out / f".{name}{FORMATS[fmt]}.partial"
        self.rows = 0
        if fmt == "parquet":
            self._writer: pq.ParquetWriter | pacsv.CSVWriter = pq.ParquetWriter(
                self.partial, schema, compression="zstd", compression_level=1, write_statistics=True)
        else:
            # No quotes: no value written contains a comma, quote or line break (pyarrow raises if one did).
            options = pacsv.WriteOptions(include_header=True, quoting_style="none", quoting_header="none")
            self._writer = pacsv.CSVWriter(self.partial, schema, write_options=options)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.partial, self.final)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.partial.unlink(missing_ok=True)


def remove_other_formats(out: Path, names: list[str], fmt: str) -> None:
    """Drop same-named tables of the other format so the folder holds exactly one extract."""
    for name in names:
        for other, ext in FORMATS.items():
            if other != fmt:
                (out / f"{name}{ext}").unlink(missing_ok=True)
