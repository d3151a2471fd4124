"""Variation between areas: a funnel plot of the all-six rate against register size (product.md M3).

Method: Spiegelhalter DJ (2005), "Funnel plots for comparing institutional performance", Statistics
in Medicine 24:1185-1202. Each organisation's rate ``all_six / register`` is plotted against its
register; the centre line is the pooled rate (or a target), and the 95% and 99.8% control limits
around it are **exact binomial limits with the paper's interpolation** (Appendix A.1.1): for a
probability ``p`` (0.001, 0.025, 0.975, 0.999) and size ``n``, ``r_p`` is the smallest ``r`` with
``P(R <= r) >= p`` for ``R ~ Binomial(n, centre)``,
``alpha = (P(R <= r_p) - p) / (P(R <= r_p) - P(R <= r_p - 1))`` and the limit is
``(r_p - alpha) / n``, clipped to [0, 1]. The binomial distribution is computed here (no SciPy) in
log space over the part of its range that holds all but a negligible sliver of its mass.

An organisation's ``band`` compares its rate with the limits at its own register size (so the band
always agrees with the plotted funnel); ``z`` is the normal-approximation score
``(rate - centre) / sqrt(centre (1 - centre) / register)``, for sorting and tooltips. With very small
registers the discreteness of the binomial shows: the limits are the paper's smooth interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from parity.errors import ConfigurationError

# Two-sided 95% and 99.8% limits (Spiegelhalter 2005 §3: "2 and 3 standard deviations").
PROBABILITIES: dict[str, float] = {"lower_998": 0.001, "lower_95": 0.025, "upper_95": 0.975, "upper_998": 0.999}
BANDS: tuple[str, ...] = ("below_998", "below_95", "within", "above_95", "above_998")
GRID_POINTS = 100
# Mass of a binomial outside mean +/- this many standard deviations (plus a margin) is far below the
# 0.001 tail the limits need (Chernoff bound: well under 1e-20).
_SPAN_SD = 12.0
_SPAN_MARGIN = 10


@dataclass(frozen=True)
class FunnelResult:
    """A funnel plot: ``centre`` (0-1), whether it is a ``target``, one row per organisation in ``points``
    (``org_code, org_name, register, all_six, rate, z, band``), and the control limits on a grid of
    register sizes in ``limits`` (``n, lower_95, upper_95, lower_998, upper_998``, all 0-1)."""

    centre: float
    target: bool
    points: pd.DataFrame
    limits: pd.DataFrame
    method: str = "exact binomial limits with interpolation (Spiegelhalter 2005, Appendix A.1.1)"


def funnel(df: pd.DataFrame, *, target: float | None = None) -> FunnelResult:
    """The funnel plot of an aggregate frame (``org_code, org_name, register, all_six``, one row per
    organisation at one level, as ``Engine.aggregate`` returns).

    Organisations with a register of 0 (or a suppressed count) are left out. ``centre`` is the pooled
    rate ``sum(all_six) / sum(register)`` unless ``target`` (a proportion, 0.75 for 75%) is given.
    """
    if target is not None and not (isinstance(target, int | float) and 0.0 <= float(target) <= 1.0):
        raise ConfigurationError("target must be a proportion between 0 and 1 (0.75 for 75%)")
    register = pd.to_numeric(df["register"], errors="coerce")
    all_six = pd.to_numeric(df["all_six"], errors="coerce")
    keep = register.notna() & all_six.notna() & (register > 0)
    points = pd.DataFrame({
        "org_code": df.loc[keep, "org_code"].astype(object),
        "org_name": df.loc[keep, "org_name"].astype(object),
        "register": register[keep].astype("int64"),
        "all_six": all_six[keep].astype("int64"),
    }).reset_index(drop=True)

    total = int(points["register"].sum())
    if target is not None:
        centre = float(target)
    else:
        centre = float(points["all_six"].sum()) / total if total else 0.0

    points["rate"] = (points["all_six"] / points["register"]).astype("float64")
    if 0.0 < centre < 1.0:
        sd = np.sqrt(centre * (1.0 - centre) / points["register"].to_numpy(dtype="float64"))
        points["z"] = (points["rate"].to_numpy() - centre) / sd
    else:
        points["z"] = np.nan
    cache: dict[int, dict[str, float]] = {}
    own = [_limits_cached(int(n), centre, cache) for n in points["register"]]
    points["band"] = [_band(rate, lim) for rate, lim in zip(points["rate"], own, strict=True)]
    points = points.sort_values(["register", "org_code"], kind="stable").reset_index(drop=True)

    largest = int(points["register"].max()) if len(points) else 1
    grid = np.unique(np.round(np.geomspace(1, max(largest, 1), GRID_POINTS)).astype("int64"))
    rows = [{"n": int(n), **_limits_cached(int(n), centre, cache)} for n in grid]
    limits = pd.DataFrame(rows, columns=["n", "lower_95", "upper_95", "lower_998", "upper_998"])
    limits["n"] = limits["n"].astype("int64")
    return FunnelResult(centre=centre, target=target is not None, points=points, limits=limits)


def control_limits(n: int, centre: float) -> dict[str, float]:
    """The four control limits (``lower_998, lower_95, upper_95, upper_998``) for a register of ``n``."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if centre <= 0.0 or centre >= 1.0:  # a degenerate binomial: every limit is the centre itself
        return dict.fromkeys(PROBABILITIES, float(min(max(centre, 0.0), 1.0)))
    lo, cdf = _binomial_cdf(n, centre)
    out = {}
    for name, p in PROBABILITIES.items():
        i = int(np.searchsorted(cdf, p, side="left"))  # first r (offset by lo) with P(R <= r) >= p
        i = min(i, len(cdf) - 1)
        below = cdf[i - 1] if i > 0 else 0.0
        alpha = (cdf[i] - p) / (cdf[i] - below) if cdf[i] > below else 0.0
        out[name] = float(min(max((lo + i - alpha) / n, 0.0), 1.0))
    return out


def _limits_cached(n: int, centre: float, cache: dict[int, dict[str, float]]) -> dict[str, float]:
    if n not in cache:
        cache[n] = control_limits(n, centre)
    lim = cache[n]
    return {k: lim[k] for k in ("lower_95", "upper_95", "lower_998", "upper_998")}


def _band(rate: float, lim: dict[str, float]) -> str:
    if rate < lim["lower_998"]:
        return "below_998"
    if rate < lim["lower_95"]:
        return "below_95"
    if rate > lim["upper_998"]:
        return "above_998"
    if rate > lim["upper_95"]:
        return "above_95"
    return "within"


def _binomial_cdf(n: int, p: float) -> tuple[int, np.ndarray]:
    """``(lo, cdf)``: ``cdf[k] = P(R <= lo + k)`` for ``R ~ Binomial(n, p)``, over ``lo..hi`` where the
    mass outside is negligible. Log probabilities use log-factorials built by cumulative sums."""
    mean = n * p
    sd = math.sqrt(n * p * (1.0 - p))
    lo = max(0, math.floor(mean - _SPAN_SD * sd) - _SPAN_MARGIN)
    hi = min(n, math.ceil(mean + _SPAN_SD * sd) + _SPAN_MARGIN)
    r = np.arange(lo, hi + 1, dtype="float64")
    # log r! for r = lo..hi and log (n - r)! for the same r
    log_fact_r = math.lgamma(lo + 1) + np.concatenate(([0.0], np.cumsum(np.log(r[1:]))))
    m = n - r  # n - lo down to n - hi
    log_fact_m = math.lgamma(n - hi + 1) + np.concatenate(([0.0], np.cumsum(np.log(m[::-1][1:]))))[::-1]
    log_pmf = math.lgamma(n + 1) - log_fact_r - log_fact_m + r * math.log(p) + m * math.log1p(-p)
    cdf = np.cumsum(np.exp(log_pmf))
    return lo, np.minimum(cdf, 1.0)
