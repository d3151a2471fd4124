"""QOF mental health register size and list size per practice (published QOF prevalence data).

``register`` is the QOF MH register (``GROUP_CODE`` MH: schizophrenia, bipolar affective disorder
and other psychoses, and patients on lithium therapy), ``list_size`` the practice's total list size
(``PATIENT_LIST_TYPE`` TOTAL) as published for the QOF year. Practices follow that year's QOF file,
not a structure: some are in no shipped structure.
"""

from __future__ import annotations

import functools

import pandas as pd

from parity.errors import ConfigurationError
from parity.orgs import _data

REGISTER_YEARS: tuple[str, ...] = ("2020-21", "2022-23")
"""QOF years shipped, oldest first."""


@functools.cache
def _register_sizes(year: str) -> pd.DataFrame:
    rows = _data.register_rows()
    frame = rows.loc[rows["year"] == year, ["practice_code", "register", "list_size"]]
    return frame.sort_values("practice_code", ignore_index=True)


def register_sizes(year: str = "2022-23") -> pd.DataFrame:
    """``practice_code``, ``register`` (int), ``list_size`` (int) for QOF ``year``, one row per practice.

    Unknown ``year``: :class:`~parity.errors.ConfigurationError`.
    """
    if year not in REGISTER_YEARS:
        raise ConfigurationError(
            f"no QOF register sizes for {year!r}; choose one of {', '.join(REGISTER_YEARS)}"
        )
    return _register_sizes(year).copy()
