"""Reference data for the synthetic population: practices, register sizes, codes, trusts, drugs.

Everything comes from the package at run time: practices and QOF register sizes from
``parity.orgs``, clinical codes from ``parity.codes`` and the small tables in ``synth/data``
(provenance in ``synth/data/SOURCES.md``).
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from parity.errors import ConfigurationError, ParityError

SCALES = ("practice", "icb", "region", "england")
SOUTH_EAST = "Y59"
# Default ICB per structure when --scale icb has no --area: Sussex (2022-23), Surrey and Sussex (2026).
DEFAULT_ICB = {"2022-23": "QNX", "2026": "S9B9J"}
# QOF MH registers exist for 2022-23 only (qof/qof_2022-23); both structures use them.
REGISTER_YEAR = "2022-23"


def _data_rows(name: str) -> list[dict[str, str]]:
    text = (resources.files("parity.synth") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (not by any random seed)."""
    key = "|".join(str(p) for p in parts).encode()
    return (zlib.crc32(key) & 0xFFFFFFFF) / 2**32


# --------------------------------------------------------------------------- practices


@dataclass(frozen=True)
class Scope:
    """The practices to generate, with their target register sizes."""

    scale: str
    area: str | None
    structure: str
    practices: pd.DataFrame  # practice_code, pcn_code, icb_code, region_code, register (int), sorted by code
    all_practices: pd.DataFrame  # every practice of the structure (for moves between practices)


def _orgs():
    from parity import orgs

    return orgs


def _all_practices(structure: str) -> pd.DataFrame:
    orgs = _orgs()
    try:
        df = orgs.practices(structure)
    except ParityError as exc:
        raise ConfigurationError(str(exc)) from None
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(f"unknown organisation structure {structure!r} ({exc})") from None
    cols = ["practice_code", "pcn_code", "icb_code", "region_code"]
    df = df[cols].copy()
    for c in cols:
        df[c] = df[c].astype("string").fillna("")
    return df.drop_duplicates("practice_code").sort_values("practice_code", kind="stable").reset_index(drop=True)


def _register_sizes() -> pd.DataFrame:
    sizes = _orgs().register_sizes(REGISTER_YEAR)[["practice_code", "register"]].copy()
    sizes["practice_code"] = sizes["practice_code"].astype("string")
    sizes["register"] = pd.to_numeric(sizes["register"], errors="coerce").fillna(0).round().astype("int64")
    return sizes.groupby("practice_code", as_index=False)["register"].sum()


def _area_codes(structure: str, scale: str, area: str) -> list[str]:
    orgs = _orgs()
    key = {"practice": "practice", "icb": "icb", "region": "region"}[scale]
    try:
        found = orgs.area_practices(structure, **{key: area})
    except ParityError as exc:
        raise ConfigurationError(str(exc)) from None
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(f"unknown {scale} {area!r} in the {structure} structure ({exc})") from None
    if isinstance(found, pd.DataFrame):
        codes = found["practice_code"].astype(str).tolist()
    else:
        codes = [str(c) for c in found]
    if not codes:
        raise ConfigurationError(f"no practices found for {scale} {area!r} in the {structure} structure")
    return codes


def resolve_scope(scale: str, area: str | None, structure: str) -> Scope:
    """Practices (with QOF register sizes) for a scale and area; defaults follow the product brief."""
    if scale not in SCALES:
        raise ConfigurationError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    everyone = _all_practices(structure)
    sized = everyone.merge(_register_sizes(), on="practice_code", how="inner")
    sized = sized[sized["register"] > 0]
    if scale == "england":
        if area not in (None, "", "ENG", "england"):
            raise ConfigurationError("--area is not used with --scale england")
        chosen, area = sized, None
    else:
        if not area:
            se = sized[sized["region_code"] == SOUTH_EAST]
            if scale == "region":
                area = SOUTH_EAST
            elif scale == "icb":
                area = DEFAULT_ICB.get(structure) or str(
                    se.groupby("icb_code")["register"].sum().idxmax()
                )
            else:  # the largest South East practice by MH register
                area = str(se.sort_values(["register", "practice_code"], ascending=[False, True]).iloc[0][
                    "practice_code"
                ])
        codes = set(_area_codes(structure, scale, area))
        chosen = sized[sized["practice_code"].isin(codes)]
        if chosen.empty:
            raise ConfigurationError(f"{scale} {area!r} has no practice with a QOF {REGISTER_YEAR} MH register")
    chosen = chosen.sort_values("practice_code", kind="stable").reset_index(drop=True)
    return Scope(scale=scale, area=area, structure=structure, practices=chosen, all_practices=everyone)


def scale_registers(registers: np.ndarray, patients: int | None) -> np.ndarray:
    """Register sizes scaled so they sum to ``patients`` (largest remainder), keeping proportions."""
    registers = registers.astype(np.int64)
    if patients is None:
        return registers
    if patients <= 0:
        raise ConfigurationError("--patients must be a positive number")
    exact = registers * (patients / registers.sum())
    out = np.floor(exact).astype(np.int64)
    short = patients - int(out.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(exact)), -(exact - out)))
        out[order[:short]] += 1
    return out


# --------------------------------------------------------------------------- trusts


@cache
def trusts_by_icb() -> dict[str, tuple[tuple[str, ...], tuple[float, ...]]]:
    table: dict[str, tuple[list[str], list[float]]] = {}
    for row in _data_rows("mh_trusts.csv"):
        codes, weights = table.setdefault(row["icb_code"], ([], []))
        codes.append(row["trust_code"])
        weights.append(float(row["weight"]))
    return {k: (tuple(c), tuple(w)) for k, (c, w) in table.items()}


def trusts_for(icb: str, region: str, all_practices: pd.DataFrame) -> tuple[tuple[str, ...], np.ndarray]:
    """Mental-health trusts recording checks for an ICB (borrowing its region's when unmapped)."""
    table = trusts_by_icb()
    if icb in table:
        codes, weights = table[icb]
    else:
        icbs = sorted(set(all_practices.loc[all_practices["region_code"] == region, "icb_code"]) & set(table))
        codes_l: list[str] = []
        weights_l: list[float] = []
        for other in icbs or sorted(table):
            for c, w in zip(*table[other], strict=True):
                if c not in codes_l:
                    codes_l.append(c)
                    weights_l.append(w)
        codes, weights = tuple(codes_l), tuple(weights_l)
    w = np.asarray(weights, dtype=float)
    return codes, w / w.sum()


# --------------------------------------------------------------------------- drugs and noise


@dataclass(frozen=True)
class Drugs:
    dmd: np.ndarray  # int64
    bnf: tuple[str, ...]
    group: np.ndarray  # int index into groups
    groups: tuple[str, ...]
    kind: tuple[str, ...]  # per group
    weight: np.ndarray  # within-group weight


@cache
def drugs() -> Drugs:
    rows = _data_rows("drugs.csv")
    groups: list[str] = []
    kinds: list[str] = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(r["group"])
            kinds.append(r["kind"])
    return Drugs(
        dmd=np.array([int(r["dmd_code"]) for r in rows], dtype=np.int64),
        bnf=tuple(r["bnf_code"] for r in rows),
        group=np.array([groups.index(r["group"]) for r in rows], dtype=np.int64),
        groups=tuple(groups),
        kind=tuple(kinds),
        weight=np.array([float(r["weight"]) for r in rows]),
    )


@dataclass(frozen=True)
class NoiseCode:
    code: int
    term: str
    kind: str
    weight: float
    unit: str
    mean: float
    sd: float
    decimals: int


@cache
def noise_codes_raw() -> tuple[NoiseCode, ...]:
    out = []
    for r in _data_rows("noise_codes.csv"):
        out.append(NoiseCode(
            code=int(r["snomed_code"]), term=r["term"], kind=r["kind"], weight=float(r["weight"]),
            unit=r["unit"], mean=float(r["mean"] or "nan"), sd=float(r["sd"] or "nan"),
            decimals=int(r["decimals"] or 0),
        ))
    return tuple(out)


# --------------------------------------------------------------------------- codelists


def _load_ids(cluster: str) -> list[int] | None:
    """Codes of a cluster in the codelist's own order, or None when the package has no such list."""
    from parity import codes

    try:
        cl = codes.load_codelist(cluster)
    except codes.UnknownClusterError:
        return None
    return [int(c.code) for c in cl.codes]


@cache
def cluster_ids(cluster: str) -> tuple[int, ...] | None:
    ids = _load_ids(cluster)
    return None if ids is None else tuple(ids)


@cache
def measure_clusters() -> frozenset[str]:
    """Every cluster named by a built-in measure (register, checks, declines, risk criteria)."""
    from parity.rules.registry import list_measures, load_measure

    names: set[str] = set()
    for m in list_measures():
        names |= set(load_measure(m).clusters())
    return frozenset(names)


def required(cluster: str) -> tuple[int, ...]:
    ids = cluster_ids(cluster)
    if not ids:
        raise ConfigurationError(f"codelist {cluster} is not available in parity.codes")
    return ids


@dataclass(frozen=True)
class Picker:
    """Weighted choice of codes from a cluster: known common codes first, the rest on a long tail."""

    codes: np.ndarray
    cum: np.ndarray

    def pick(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if n == 0:
            return np.empty(0, dtype=np.int64)
        return self.codes[np.searchsorted(self.cum, rng.random(n), side="right").clip(0, len(self.codes) - 1)]


def make_picker(ids: tuple[int, ...] | list[int], preferred: dict[int, float] | None = None,
                tail: float = 0.1, exclude: frozenset[int] | set[int] = frozenset()) -> Picker | None:
    pool = [c for c in ids if c not in exclude]
    if not pool:
        return None
    preferred = {c: w for c, w in (preferred or {}).items() if c in pool}
    rest = [c for c in pool if c not in preferred]
    codes = list(preferred) + rest
    if preferred:
        weights = list(preferred.values())
        if rest:
            zipf = 1.0 / np.arange(1, len(rest) + 1) ** 1.2
            weights += list(tail * sum(preferred.values()) * zipf / zipf.sum())
    else:
        weights = list(1.0 / np.arange(1, len(rest) + 1) ** 1.1)
    w = np.asarray(weights, dtype=float)
    return Picker(codes=np.asarray(codes, dtype=np.int64), cum=np.cumsum(w / w.sum()))
