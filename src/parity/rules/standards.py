"""The national standards for the all-six rate and the one red/amber/green rule every page and report
uses (issue 11: "one standard, one colour").

Standards (clinical-spec.md §1): 60% of people on the SMI register with all six checks in 12 months (NHS
Five Year Forward View for Mental Health / Long Term Plan), raised to 75% (NHS England Operating Plan
guidance 2024/25).

RAG rule: **green** at or above 75%, **amber** from 60% up to 75%, **red** below 60%, **grey** when there
is no rate (no register). A trajectory is a different question (is an area where it planned to be by
now?) and is reported as "on track" or "behind", never in these colours, so one area cannot be red on
one page and amber on another. Funnel-plot limits are statistical (95% and 99.8% control limits),
never a judgement of good or bad.
"""

from __future__ import annotations

import math

STANDARDS: tuple[float, float] = (60.0, 75.0)
"""The all-six standards in percent, lower first: 60% (Five Year Forward View), 75% (Operating Plan 2024/25)."""

RAG_STATUSES: tuple[str, ...] = ("green", "amber", "red", "grey")

RAG_LABELS: dict[str, str] = {"green": "75% or more", "amber": "60% to 75%", "red": "Below 60%",
                              "grey": "No register"}
"""What each colour means, for legends."""

RAG_TAG_COLOURS: dict[str, str] = {"green": "green", "amber": "yellow", "red": "red", "grey": "grey"}
"""NHS.UK frontend tag modifier for each status (the frontend has no "amber"; yellow is its amber)."""

RAG_RULE = ("Green: all six checks for 75% or more of the register. Amber: 60% up to 75%. Red: below 60%. "
            "(National standards: 60%, raised to 75% in 2024/25.)")


def rag(percent: float | None) -> str:
    """``green``/``amber``/``red`` for an all-six rate in percent, ``grey`` when there is none."""
    if percent is None:
        return "grey"
    try:
        value = float(percent)
    except (TypeError, ValueError):
        return "grey"
    if math.isnan(value):
        return "grey"
    if value >= STANDARDS[1]:
        return "green"
    if value >= STANDARDS[0]:
        return "amber"
    return "red"


def trajectory_status(actual: float | None, expected: float | None) -> str:
    """``on track`` when the all-six count is at or above the trajectory for the period, ``behind`` below
    it, ``no data`` when either is missing. Not a RAG colour (see the module docstring)."""
    if actual is None or expected is None:
        return "no data"
    if any(isinstance(v, float) and math.isnan(v) for v in (actual, expected)):
        return "no data"
    return "on track" if float(actual) >= float(expected) else "behind"
