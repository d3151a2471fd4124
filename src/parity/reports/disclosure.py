"""Statistical disclosure control for published aggregate outputs (product.md M12).

The PHSMI publication's own rule was not found (clinical-spec.md §2.6), so Parity applies the
common NHS England approach, configurable: counts from 1 to ``suppress_below - 1`` are
suppressed (shown as None), zero stays zero, every other count is rounded to the nearest
``round_to``. Percentages are recomputed from the rounded counts, and suppressed wherever the
numerator or denominator is suppressed, so suppressed cells cannot be recovered by differencing
against a percentage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class DisclosureControl:
    """Suppress small counts and round the rest."""

    suppress_below: int = 8
    round_to: int = 5

    def count(self, n: int | None) -> int | None:
        """One count after disclosure control (None means suppressed)."""
        if n is None:
            return None
        n = int(n)
        if n == 0:
            return 0
        if n < self.suppress_below:
            return None
        if self.round_to <= 1:
            return n
        # Round half up, as published NHS tables do (Python's round() is half-to-even).
        return int((n + self.round_to / 2) // self.round_to) * self.round_to

    def apply(self, df: pd.DataFrame, count_columns: Iterable[str], *,
              numerator: str = "all_six", denominator: str = "register",
              percent: str = "percent") -> pd.DataFrame:
        """A copy of ``df`` with ``count_columns`` controlled and ``percent`` recomputed."""
        out = df.copy()
        for col in count_columns:
            out[col] = pd.array([self.count(v) for v in out[col]], dtype="Int64")
        if percent in out.columns:
            pct = []
            for num, den in zip(out[numerator], out[denominator], strict=True):
                if pd.isna(num) or pd.isna(den) or den == 0:
                    pct.append(None)
                else:
                    pct.append(round(100.0 * int(num) / int(den), 1))
            out[percent] = pd.array(pct, dtype="Float64")
        return out
