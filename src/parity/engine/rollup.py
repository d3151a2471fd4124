"""Roll per-practice counts up to organisation levels, as the reference engine groups
(``parity.engine.levels``): the Ibis engine counts per practice in the database and rolls the few
thousand practice rows up here."""

from __future__ import annotations

from typing import Any

import pandas as pd

from parity.engine.base import aggregate_columns, normalise_aggregate
from parity.engine.levels import describe, level_code, organisation_names
from parity.rules.model import Measure

_LABELS = ("org_code", "org_name", "level", "parent_code", "percent")


class Hierarchy:
    """Rolls per-practice counts up to a level, as the reference engine groups: each practice's
    organisation, name and parent come from ``parity.engine.levels`` (``UNMAPPED`` for a practice not
    in ``structure``). The practice -> organisation maps are built once per level."""

    def __init__(self, structure: str, practices: list[dict[str, Any]]) -> None:
        self.structure = structure
        self.practices = practices
        self._lookup = {p["practice_code"]: p for p in practices}
        self._maps: dict[str, tuple[dict[str, str], dict[str, tuple[str, str | None]]]] = {}

    def _level(self, level: str) -> tuple[dict[str, str], dict[str, tuple[str, str | None]]]:
        if level not in self._maps:
            codes = {pc: level_code(p, level) for pc, p in self._lookup.items()}
            names = organisation_names(self.structure, level, self.practices) if level != "england" else {}
            self._maps[level] = (codes, names)
        return self._maps[level]

    def roll_up(self, counts: pd.DataFrame, measure: Measure, level: str) -> pd.DataFrame:
        """One level's aggregate of ``counts`` (per practice; with an ``as_of`` column, per date)."""
        codes, names = self._level(level)
        missing = level_code(None, level)
        value_cols = [c for c in aggregate_columns(measure) if c not in _LABELS]
        df = counts[value_cols].astype("int64")
        keys = ["org_code"]
        # A practice outside the structure is ``missing``; a practice without a PCN keeps None.
        df.insert(0, "org_code", [codes.get(pc, missing) for pc in counts["practice_code"].tolist()])
        if "as_of" in counts.columns:
            df.insert(0, "as_of", counts["as_of"].to_numpy(dtype=object))
            keys = ["as_of", "org_code"]
        df = df.groupby(keys, dropna=False, sort=False).sum().reset_index()
        df["org_code"] = [None if pd.isna(v) else v for v in df["org_code"]]
        described = {code: describe(code, level, self.structure, names) for code in set(df["org_code"])}
        df["org_name"] = [described[c][0] for c in df["org_code"]]
        df["parent_code"] = [described[c][1] for c in df["org_code"]]
        df["level"] = level
        df["percent"] = None
        return normalise_aggregate(df, measure, by=keys[:-1])


def roll_up(
    counts: pd.DataFrame, measure: Measure, level: str, structure: str, practices: list[dict[str, Any]]
) -> pd.DataFrame:
    """One level's aggregate from per-practice counts (``Hierarchy.roll_up`` for one call)."""
    return Hierarchy(structure, practices).roll_up(counts, measure, level)
