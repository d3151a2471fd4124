"""Inequalities (product.md M8): a measure's rates broken down by age band, sex, ethnic group or deprivation.

``inequalities(results, measure_id, as_of, level, org_code, by=...)`` gives one row per organisation at
``level`` (or only ``org_code``) and group, in a fixed group order, every group listed even when empty:

=====================  ====================================================================================
``org_code, org_name``  the organisation (practices mapped to levels exactly as the engine does:
                        ``practices`` table of ``results.structure_for(as_of)``; a practice not in it is ``UNMAPPED``)
``level, by, group``    the level, the breakdown and the group label
``reference_group``     the group the rate ratio compares against; ``is_reference`` marks its row
``register``            people in the denominator in this group
``all_six, percent``    all six core checks done: count and rate (%), Wilson 95% CI ``ci_low, ci_high`` (%)
``rate_ratio``          all-six rate of the group / rate of the reference group, 95% CI ``rr_low, rr_high``
                        (log method: SE(ln RR) = sqrt(1/a - 1/n1 + 1/c - 1/n2); none when a or c is 0)
``<check>`` …           per check: count done, ``_percent``, ``_ci_low``, ``_ci_high``, ``_ratio``,
                        ``_ratio_low``, ``_ratio_high``
=====================  ====================================================================================

Groups (``GROUPS``):

* **age_band** on the reporting date: 0–17, 18–34, 35–54, 55–74, 75+ and Not known. 18 splits children (outside
  the adult PHSMI offer, a handful on the register) from adults; 20-year bands above that keep cells large enough
  to survive suppression at practice and PCN level (the SMI register is mostly 25–75); 75+ marks the older-adult
  services boundary (and the top of the NHS Health Check's 40–74 range).
* **sex**: Female, Male, Other or not known (the ``intersex`` and ``unknown`` values and missing; each alone is
  far too rare to show).
* **ethnic_group**: the NHS ethnic category letters (NHS Data Model and Dictionary, "Ethnic Category", 2001
  census classification) grouped under the dictionary's own headings, which are the five ONS 2001 high-level
  groups: White (A–C), Mixed (D–G), Asian or Asian British (H–L), Black or Black British (M–P), Other ethnic group
  (R Chinese, S any other) and Not stated (Z, 99, missing or unrecognised). Note the 2021 census moved Chinese
  into Asian; Parity follows the dictionary because the letters are the dictionary's.
* **imd_quintile**: IMD deciles 1–2 → quintile 1 (most deprived) … 9–10 → quintile 5 (least deprived); Not known.

Reference groups (``REFERENCE``) are fixed, so ratios compare like with like across organisations: 35–54 (the
largest band on the register), Female (higher uptake, so ratios below 1 show the gap for men), White (the
largest group), quintile 5 (least deprived: the usual deprivation-gradient comparison). ``reference="largest"``
picks each organisation's largest group instead.

**Disclosure control** (``settings`` given; ``parity.reports.disclosure``): a group whose register is 1..7 is
suppressed whole (every count, rate, CI and ratio); any other count 1..7 is suppressed with the rates built on
it; other counts are rounded to the nearest ``round_to`` and every rate, CI and ratio is computed from the
rounded counts. Secondary suppression: within one organisation and one count column, if exactly one cell is
suppressed, the smallest other non-zero cell is suppressed too, so the suppressed value cannot be recovered
by subtracting the other groups from the organisation's total. Zero stays zero. A ratio is suppressed when
its group's or the reference group's numerator or denominator is.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from parity.engine.base import LEVELS
from parity.engine.levels import UNMAPPED, describe, level_code, organisation_names
from parity.engine.results import ResultStore
from parity.errors import ConfigurationError, NotFound
from parity.reports.disclosure import DisclosureControl

Z95 = 1.959963984540054  # standard normal 97.5% quantile

NOT_KNOWN = "Not known"
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0–17", 0, 17), ("18–34", 18, 34), ("35–54", 35, 54), ("55–74", 55, 74), ("75+", 75, None),
)
SEX_GROUPS = {"female": "Female", "male": "Male"}
SEX_OTHER = "Other or not known"
ETHNIC_GROUPS: dict[str, str] = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian or Asian British"),
    **dict.fromkeys("MNP", "Black or Black British"),
    **dict.fromkeys("RS", "Other ethnic group"),
}
NOT_STATED = "Not stated"
QUINTILES = ("1 (most deprived)", "2", "3", "4", "5 (least deprived)")

GROUPS: dict[str, tuple[str, ...]] = {
    "age_band": (*(b[0] for b in AGE_BANDS), NOT_KNOWN),
    "sex": ("Female", "Male", SEX_OTHER),
    "ethnic_group": ("White", "Mixed", "Asian or Asian British", "Black or Black British", "Other ethnic group",
                     NOT_STATED),
    "imd_quintile": (*QUINTILES, NOT_KNOWN),
}
BREAKDOWNS: tuple[str, ...] = tuple(GROUPS)
REFERENCE: dict[str, str] = {"age_band": "35–54", "sex": "Female", "ethnic_group": "White",
                             "imd_quintile": "5 (least deprived)"}
BY_LABELS = {"age_band": "Age band", "sex": "Sex", "ethnic_group": "Ethnic group", "imd_quintile": "IMD quintile"}
BY_PHRASES = {"age_band": "age band", "sex": "sex", "ethnic_group": "ethnic group", "imd_quintile": "IMD quintile"}


# -- group mappings -------------------------------------------------------------------------------
def age_band(age: float | None) -> str:
    """Parity's age band for a whole-years age (None/negative: Not known)."""
    if age is None or pd.isna(age) or age < 0:
        return NOT_KNOWN
    for label, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return label
    return NOT_KNOWN  # pragma: no cover - the last band is open


def ages(dob: pd.Series, as_of: date) -> pd.Series:
    """Age in whole years on ``as_of`` (NaN where the date of birth is missing)."""
    stamps = pd.to_datetime(dob, errors="coerce")
    years = as_of.year - stamps.dt.year
    before_birthday = (stamps.dt.month > as_of.month) | ((stamps.dt.month == as_of.month) & (stamps.dt.day > as_of.day))
    return (years - before_birthday.astype("float64")).astype("float64")


def sex_group(sex: Any) -> str:
    if sex is None or (not isinstance(sex, str) and pd.isna(sex)):
        return SEX_OTHER
    return SEX_GROUPS.get(str(sex).strip().lower(), SEX_OTHER)


def ethnic_group(letter: Any) -> str:
    """NHS ethnic category letter → high-level group (Z, 99, missing and unknown letters: Not stated)."""
    if letter is None or (not isinstance(letter, str) and pd.isna(letter)):
        return NOT_STATED
    return ETHNIC_GROUPS.get(str(letter).strip().upper(), NOT_STATED)


def imd_quintile(decile: Any) -> str:
    """IMD decile 1–10 → quintile label: 1–2 → 1 (most deprived) … 9–10 → 5 (least deprived)."""
    if decile is None or pd.isna(decile):
        return NOT_KNOWN
    d = int(decile)
    if not 1 <= d <= 10:
        return NOT_KNOWN
    return QUINTILES[(d - 1) // 2]


def group_of(people: pd.DataFrame, by: str, as_of: date) -> pd.Series:
    """Each person's group for breakdown ``by`` (``people`` has the ``ResultStore.patients`` columns)."""
    if by == "age_band":
        return ages(people["date_of_birth"], as_of).map(age_band)
    if by == "sex":
        return people["sex"].map(sex_group)
    if by == "ethnic_group":
        return people["ethnicity"].map(ethnic_group)
    if by == "imd_quintile":
        return people["imd_decile"].map(imd_quintile)
    raise ConfigurationError(f"by must be one of {', '.join(BREAKDOWNS)}")


# -- statistics ------------------------------------------------------------------------------------
def wilson(x: Any, n: Any, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for x/n as proportions (NaN where n is 0 or missing). Vectorised."""
    x = np.asarray(x, dtype="float64")
    n = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z * np.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
        low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    bad = ~(n > 0)
    low[bad], high[bad] = np.nan, np.nan
    return low, high


def rate_ratio(a: Any, n1: Any, c: Any, n2: Any, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratio, low, high): (a/n1)/(c/n2) with the log-method 95% CI,
    SE(ln RR) = sqrt(1/a - 1/n1 + 1/c - 1/n2). Ratio NaN when a denominator or c is 0; CI NaN when a or c is 0."""
    a, n1, c, n2 = (np.asarray(v, dtype="float64") for v in (a, n1, c, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a / n1) / (c / n2)
        se = np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
        low, high = ratio * np.exp(-z * se), ratio * np.exp(z * se)
    ratio[~((n1 > 0) & (n2 > 0) & (c > 0))] = np.nan
    ok = (a > 0) & (c > 0) & (n1 > 0) & (n2 > 0)
    low[~ok], high[~ok] = np.nan, np.nan
    return ratio, low, high


# -- the breakdown ---------------------------------------------------------------------------------
def inequalities(results: ResultStore, measure_id: str, as_of: date, level: str, org_code: str | None = None, *,
                 by: str, settings: Any = None, reference: str | None = None) -> pd.DataFrame:
    """Rates by group for each organisation at ``level`` (see the module docstring for the columns).

    ``settings`` (``parity.settings.Settings``): apply disclosure control with its ``suppress_below``/``round_to``.
    ``reference``: a group label of ``by``, ``"largest"`` (each organisation's largest group), or None for the
    fixed default in ``REFERENCE``.
    """
    if by not in GROUPS:
        raise ConfigurationError(f"by must be one of {', '.join(BREAKDOWNS)}")
    if level not in LEVELS:
        raise ConfigurationError(f"level must be one of {', '.join(LEVELS)}")
    reference = reference or REFERENCE[by]
    if reference != "largest" and reference not in GROUPS[by]:
        raise ConfigurationError(f"reference must be 'largest' or one of: {', '.join(GROUPS[by])}")
    measure = results.measure(measure_id)
    checks = [c.id for c in measure.checks]
    status = results.status(measure_id, as_of)
    status = status[status["in_denominator"]]
    structure = results.structure_for(as_of)
    practices = _practice_rows(results, structure)
    lookup = {p["practice_code"]: p for p in practices}
    codes = {pc: level_code(lookup.get(pc), level) for pc in status["practice_code"].unique()}
    orgs = status["practice_code"].map(codes)
    people = results.patients()
    groups = group_of(people.reindex(status["nhs_number"].astype(str)), by, as_of)
    counts = pd.DataFrame({"org_code": orgs.to_numpy(), "group": groups.to_numpy(),
                           "register": 1, "all_six": status["all_six"].to_numpy()})
    for c in checks:
        counts[c] = status[c].to_numpy()
    value_cols = ["register", "all_six", *checks]
    counts[value_cols] = counts[value_cols].astype("int64")
    summed = counts.groupby(["org_code", "group"], sort=False)[value_cols].sum()

    names = organisation_names(structure, level, practices) if level != "england" else {}
    if org_code is not None:
        org_list = [org_code]
        if org_code not in set(orgs) and org_code not in names and org_code not in ("ENG", UNMAPPED):
            raise NotFound(f"no {level} with code {org_code} in the loaded data")
    else:
        org_list = sorted(set(orgs))
    index = pd.MultiIndex.from_product([org_list, list(GROUPS[by])], names=["org_code", "group"])
    df = summed.reindex(index, fill_value=0).reset_index()
    df[value_cols] = df[value_cols].astype("int64")

    if reference == "largest":  # from the true counts, before rounding (ties: the first group in order)
        largest = df.sort_values(["org_code", "register"], ascending=[True, False], kind="stable")
        df["reference_group"] = df["org_code"].map(largest.groupby("org_code", sort=False)["group"].first())
    else:
        df["reference_group"] = reference
    if settings is not None:
        control = DisclosureControl(settings.suppress_below, settings.round_to)
        df = suppress_groups(df, value_cols, control)

    described = [describe(code, level, structure, names) for code in df["org_code"]]
    df.insert(1, "org_name", [name for name, _parent in described])
    df.insert(2, "level", level)
    df.insert(3, "by", by)
    df = _add_rates(df, ["all_six", *checks])
    return df.reset_index(drop=True)


def _practice_rows(results: ResultStore, structure: str) -> list[dict[str, Any]]:
    def build() -> list[dict[str, Any]]:
        with results.db.lock:
            t = results.db.ibis.table("practices")
            frame = t.filter(t.structure == structure).to_pandas()
        return [{k: (None if pd.isna(v) else v) for k, v in rec.items()} for rec in frame.to_dict("records")]

    return results.derived(("inequalities_practices", structure), build)


def suppress_groups(df: pd.DataFrame, value_cols: list[str], control: DisclosureControl) -> pd.DataFrame:
    """Primary suppression (whole group when its register is small, else cell by cell), secondary
    suppression within each organisation and column, then rounding. ``df`` has ``org_code``, ``group``,
    ``reference_group`` and the ``value_cols`` (the register first). Counts become nullable Int64."""
    raw = df[value_cols].to_numpy(dtype="int64")
    small = (raw >= 1) & (raw < control.suppress_below)
    hidden = small.copy()
    hidden[small[:, 0], :] = True  # a small register hides its whole row
    orgs = df["org_code"].to_numpy()
    is_ref = (df["group"] == df["reference_group"]).to_numpy(dtype=bool)
    for org in pd.unique(orgs):
        rows = np.flatnonzero(orgs == org)
        # A whole row hidden alone in its organisation would be recovered from the register total: hide a partner row.
        _hide_partner(hidden, raw, rows, 0, is_ref, whole_row=True)
        for j in range(1, len(value_cols)):
            _hide_partner(hidden, raw, rows, j, is_ref, whole_row=False)
    out = df.copy()
    for j, col in enumerate(value_cols):
        out[col] = pd.array([None if hidden[i, j] else control.count(int(raw[i, j])) for i in range(len(df))],
                            dtype="Int64")
    return out


def _hide_partner(hidden: np.ndarray, raw: np.ndarray, rows: np.ndarray, j: int, is_ref: np.ndarray, *,
                  whole_row: bool) -> None:
    """If exactly one cell of column ``j`` is hidden among ``rows``, hide the smallest other non-zero cell too
    (not the reference group's while another will do, so the remaining ratios survive)."""
    if int(hidden[rows, j].sum()) != 1:
        return
    candidates = [i for i in rows if not hidden[i, j] and raw[i, j] > 0]
    if not candidates:
        return
    partner = min(candidates, key=lambda i: (bool(is_ref[i]), raw[i, j], i))
    if whole_row:
        hidden[partner, :] = True
    else:
        hidden[partner, j] = True


def _add_rates(df: pd.DataFrame, numerators: list[str]) -> pd.DataFrame:
    """Percent, Wilson CI and rate ratio (with CI) for each numerator; NaN-free: missing is None (pd.NA)."""
    out = df.copy()
    register = out["register"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    out["is_reference"] = out["group"] == out["reference_group"]
    ref_rows = out[out["is_reference"]].set_index("org_code")
    ref_n = out["org_code"].map(ref_rows["register"]).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    new: dict[str, Any] = {}
    for col in numerators:
        x = out[col].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        c = out["org_code"].map(ref_rows[col]).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            pct = np.where(register > 0, 100 * x / register, np.nan)
        low, high = wilson(x, register)
        ratio, rlow, rhigh = rate_ratio(x, register, c, ref_n)
        is_ref = out["is_reference"].to_numpy(dtype=bool)
        rlow[is_ref], rhigh[is_ref] = np.nan, np.nan  # 1 by definition: no interval
        prefix = "" if col == "all_six" else f"{col}_"
        names = (("percent", "ci_low", "ci_high", "rate_ratio", "rr_low", "rr_high") if col == "all_six" else
                 tuple(f"{prefix}{s}" for s in ("percent", "ci_low", "ci_high", "ratio", "ratio_low", "ratio_high")))
        values = (np.round(pct, 1), np.round(100 * low, 1), np.round(100 * high, 1),
                  np.round(ratio, 2), np.round(rlow, 2), np.round(rhigh, 2))
        for name, v in zip(names, values, strict=True):
            new[name] = pd.array([None if math.isnan(f) else float(f) for f in v], dtype="Float64")
    checks = [c for c in numerators if c != "all_six"]
    cols = ["org_code", "org_name", "level", "by", "group", "reference_group", "is_reference", "register",
            "all_six", "percent", "ci_low", "ci_high", "rate_ratio", "rr_low", "rr_high"]
    for name, v in new.items():
        out[name] = v
    for ch in checks:
        cols += [ch, *(f"{ch}_{s}" for s in ("percent", "ci_low", "ci_high", "ratio", "ratio_low", "ratio_high"))]
    return out[cols]
