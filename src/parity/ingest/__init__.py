"""Canonical extract v1: validate a folder of CSV or Parquet files and load it into the database.

An extract is a folder with one file per table: ``patients``, ``registrations`` and ``events``
(required) and ``medications`` (optional), each ``<table>.csv`` (UTF-8, header row) or
``<table>.parquet`` with the same columns (shared/docs/product.md, "Canonical extract, version 1").
Any other file in the folder is ignored.

Every problem names file, line, column and reason, never the value. Lines count as in a
spreadsheet: the CSV header is line 1, the first data row line 2; for Parquet, row ``n`` (counting
from 1) is reported as line ``n + 1`` so both formats number rows alike.

```python
from parity.ingest import load_extract, validate_extract
result = load_extract(db, Path("extract/"), mode="replace")
report = validate_extract(Path("extract/"))
```
"""

from parity.ingest.load import MODES, LoadResult, load_extract, validate_extract
from parity.ingest.report import (
    MAX_ERRORS,
    AggregatedProblem,
    ExtractValidationError,
    ValidationReport,
)

__all__ = [
    "MAX_ERRORS",
    "MODES",
    "AggregatedProblem",
    "ExtractValidationError",
    "LoadResult",
    "ValidationReport",
    "load_extract",
    "validate_extract",
]
