"""Cached readers of the package data in ``parity/orgs/data/`` (read on first use, never at import).

The cached frames are shared: public functions hand out copies.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

import pandas as pd

from parity.orgs._build import ORGANISATIONS_FILE, PRACTICES_FILE, REGISTERS_FILE


def _read_csv(name: str, dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    resource = resources.files("parity.orgs").joinpath("data", name)
    with resource.open("rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw
        return pd.read_csv(stream, dtype=dtypes or str, keep_default_na=False)


@functools.cache
def practice_rows() -> pd.DataFrame:
    """structure, practice_code, practice_name, pcn_code, sub_icb_code (all structures)."""
    return _read_csv(PRACTICES_FILE)


@functools.cache
def organisation_rows() -> pd.DataFrame:
    """structure, level, org_code, org_name, parent_code ("" for England), levels pcn..england."""
    return _read_csv(ORGANISATIONS_FILE)


@functools.cache
def register_rows() -> pd.DataFrame:
    """year, practice_code, register, list_size (QOF MH register; all years)."""
    return _read_csv(REGISTERS_FILE, {"year": "str", "practice_code": "str",
                                      "register": "int64", "list_size": "int64"})
