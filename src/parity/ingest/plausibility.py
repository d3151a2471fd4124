"""Plausible ranges for coded values: values outside them are data-quality warnings, not errors.

Which events carry which measurement comes from the codelists (``parity.codes``): an event whose
``snomed_code`` is in ``BMIVAL_COD`` is a BMI value, and so on. The ranges are wide on purpose:
they catch unit mix-ups and typing slips (a BMI of 250, an HbA1c in percent), not unusual patients.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlausibleRange:
    cluster: str      # PCD refset cluster whose codes carry this measurement
    label: str        # words for messages
    low: float
    high: float
    unit_text: str = ""


RANGES: tuple[PlausibleRange, ...] = (
    PlausibleRange("BMIVAL_COD", "BMI", 10, 90),
    PlausibleRange("SYSBP_COD", "systolic blood pressure", 60, 260, " mmHg"),
    PlausibleRange("DIABP_COD", "diastolic blood pressure", 30, 160, " mmHg"),
    PlausibleRange("IFCCHBAM_COD", "HbA1c", 15, 200, " mmol/mol"),
    PlausibleRange("CHOL2_COD", "total cholesterol", 1, 20, " mmol/L"),
)


def code_ranges() -> dict[int, int]:
    """SNOMED CT code -> index into ``RANGES`` (a code in two clusters keeps the first).

    Returns an empty mapping when the codelists are not available, so value checks are skipped
    rather than blocking a load.
    """
    try:
        from parity.codes import load_codelist
    except ImportError:
        return {}
    mapping: dict[int, int] = {}
    for i, r in enumerate(RANGES):
        try:
            ids = load_codelist(r.cluster).ids()
        except (KeyError, LookupError, FileNotFoundError):
            continue
        for code in ids:
            mapping.setdefault(int(code), i)
    return mapping
