"""``generate``: a synthetic SMI population on real practices, written as a canonical extract."""

from __future__ import annotations

import sys
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from parity import dates
from parity.errors import ConfigurationError
from parity.rules.model import months_before
from parity.synth import population as popn
from parity.synth import reference as ref
from parity.synth.nhs import nhs_numbers
from parity.synth.output import TableWriter, remove_other_formats
from parity.synth.schema import ARROW_SCHEMAS

TABLES = ["patients", "registrations", "events", "medications"]
BATCH_PATIENTS = 25_000
# Share of generated people still on the register on the reporting date (alive, registered, not in
# remission); measured on the model, used to size each practice so its register matches QOF.
ON_REGISTER_SHARE = 0.866


@dataclass(frozen=True)
class SynthSummary:
    """What ``generate`` wrote."""

    out: Path
    format: str
    scale: str
    area: str | None
    structure: str
    seed: int
    as_of: date
    practices: int
    register: int  # people on the SMI register on as_of (alive, registered, not in remission)
    patients: int
    registrations: int
    events: int
    medications: int
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, int]:
        return {"patients": self.patients, "registrations": self.registrations, "events": self.events,
                "medications": self.medications}

    @property
    def counts(self) -> dict[str, int]:
        """Rows written per table (same as ``rows``)."""
        return self.rows

    def describe(self) -> str:
        """One line for people: what was written, where, how long it took (no patient data)."""
        where = self.scale if self.area is None else f"{self.scale} {self.area}"
        tables = ", ".join(f"{n:,} {t}" for t, n in self.rows.items())
        return (f"{where} ({self.structure}), as of {self.as_of.isoformat()}: {self.practices:,} practices, "
                f"{self.register:,} on the SMI register; wrote {tables} as {self.format} to {self.out} "
                f"in {self.seconds:.1f}s")


def default_as_of(today: date | None = None) -> date:
    """The latest quarter end (31 Mar, 30 Jun, 30 Sep, 31 Dec) strictly before ``today``
    (``parity.dates.default_as_of``)."""
    return dates.default_as_of(today)


def _windows(as_of: date) -> list[tuple[int, int]]:
    out = []
    for k in (2, 1, 0):
        end = months_before(as_of, 12 * k)
        begin = months_before(as_of, 12 * (k + 1)) + timedelta(days=1)
        out.append((popn.day(begin), popn.day(end)))
    return out


def _flu_seasons(start: int, as_of: int) -> list[tuple[int, int]]:
    first = (date(1970, 1, 1) + timedelta(days=start)).year - 1
    last = (date(1970, 1, 1) + timedelta(days=as_of)).year
    seasons = []
    for y in range(first, last + 1):
        lo, hi = max(popn.day(date(y, 9, 15)), start), min(popn.day(date(y + 1, 1, 31)), as_of)
        if hi >= lo:
            seasons.append((lo, hi))
    return seasons


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _practice_attributes(prac: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """Per-practice levels: fixed per ICB (rates, trust share) or by seed and practice code."""
    icb = prac["icb_code"].astype(str).to_numpy()
    region = prac["region_code"].astype(str).to_numpy()
    band = np.array([popn.RATE_BAND_SE if r == ref.SOUTH_EAST else popn.RATE_BAND_OTHER for r in region])
    icb_rate = band[:, 0] + (band[:, 1] - band[:, 0]) * np.array([ref.stable_unit("rate", i) for i in icb])
    lo, hi = popn.TRUST_SHARE_BAND
    trust_share = lo + (hi - lo) * np.array([ref.stable_unit("trust", i) for i in icb])
    k = len(prac)
    z, imd_u, lsoa_u = np.empty(k), np.empty(k), np.empty(k)
    for j, code in enumerate(prac["practice_code"].astype(str)):
        g = np.random.default_rng([seed, zlib.crc32(code.encode())])
        z[j], imd_u[j], lsoa_u[j] = g.standard_normal(), g.beta(1.3, 1.8), g.random()
    rate = 1 / (1 + np.exp(-(_logit(icb_rate) + popn.PRACTICE_LOGIT_SD * z)))
    return {
        "rate": np.clip(rate, 0.08, 0.92),
        "trust_share": trust_share,
        "imd_base": 1 + 9 * imd_u,
        "lsoa_base": 1 + np.floor(lsoa_u * 33_600).astype(np.int64),
        "london": region == popn.LONDON,
    }


def generate(
    out: Path,
    *,
    scale: str = "region",
    area: str | None = None,
    patients: int | None = None,
    seed: int = 42,
    as_of: date | None = None,
    fmt: str = "csv",
    structure: str = "2022-23",
    noise: float = 1.0,
    progress: bool = False,
) -> SynthSummary:
    """Generate a synthetic extract (patients, registrations, events, medications) into ``out``.

    ``scale`` picks the practices (``practice``, ``icb``, ``region``, ``england``) and ``area`` the
    practice, ICB or region code (defaults: the largest South East practice, Sussex ICB, South
    East region). Each practice's register on ``as_of`` matches its QOF 2022-23 MH register;
    ``patients`` rescales those registers to a total of about that many people on the register.
    The same arguments always write byte-identical files.
    """
    t0 = time.perf_counter()
    if fmt not in ("csv", "parquet"):
        raise ConfigurationError(f"unknown format {fmt!r}; expected csv or parquet")
    if noise < 0:
        raise ConfigurationError("noise must be zero or more")
    if seed < 0:
        raise ConfigurationError("seed must be zero or more")
    as_of = as_of or default_as_of()
    out = Path(out)

    scope = ref.resolve_scope(scale, area, structure)
    prac = scope.practices
    registers = ref.scale_registers(prac["register"].to_numpy(), patients)
    prac = prac[registers > 0].reset_index(drop=True)
    registers = registers[registers > 0]
    counts = np.maximum(np.rint(registers / ON_REGISTER_SHARE).astype(np.int64), 1)
    attrs = _practice_attributes(prac, seed)

    # organisation codes: every practice of the structure, then every trust
    all_codes = scope.all_practices["practice_code"].astype(str).tolist()
    org_index = {c: i for i, c in enumerate(all_codes)}
    trust_codes = sorted({t for codes, _ in ref.trusts_by_icb().values() for t in codes})
    for t in trust_codes:
        org_index.setdefault(t, len(all_codes))
        if org_index[t] == len(all_codes):
            all_codes.append(t)
    pool_by_icb = {
        icb: np.array([org_index[c] for c in grp["practice_code"].astype(str)], dtype=np.int64)
        for icb, grp in scope.all_practices.groupby("icb_code", sort=True)
    }
    trusts = {}
    for icb, region in prac[["icb_code", "region_code"]].drop_duplicates().itertuples(index=False):
        codes, p = ref.trusts_for(str(icb), str(region), scope.all_practices)
        trusts[str(icb)] = (np.array([org_index[c] for c in codes], dtype=np.int64), p)

    units = popn.Units()
    windows = _windows(as_of)
    ctx = popn.Context(
        as_of=popn.day(as_of), windows=windows, codes=popn.Codes.load(), noise_level=float(noise),
        org_codes=all_codes, units=units, noise=popn.Noise.load(units), drugs=ref.drugs(),
        flu_seasons=_flu_seasons(windows[0][0], popn.day(as_of)),
    )
    nhs_all = nhs_numbers(np.random.default_rng([seed, 0]), int(counts.sum()))

    # batches of consecutive practices
    bounds = [0]
    acc = 0
    for j, c in enumerate(counts):
        acc += int(c)
        if acc >= BATCH_PATIENTS and j + 1 < len(counts):
            bounds.append(j + 1)
            acc = 0
    bounds.append(len(counts))
    starts = np.concatenate([[0], np.cumsum(counts)])

    out.mkdir(parents=True, exist_ok=True)
    remove_other_formats(out, TABLES, fmt)
    writers = {t: TableWriter(out, t, ARROW_SCHEMAS[t], fmt) for t in TABLES}
    register = 0

    def write_all(tables: dict) -> None:
        for name in TABLES:
            writers[name].write(tables[name])

    # One writer thread overlaps Parquet/CSV encoding (which releases the GIL) with generating the
    # next batch; at most two batches are in memory. Writes stay in batch order, so files are
    # byte-identical run to run.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-writer")
    pending: Future | None = None
    try:
        n_batches = len(bounds) - 1
        for b in range(n_batches):
            i0, i1 = bounds[b], bounds[b + 1]
            codes = prac["practice_code"].astype(str).to_numpy()[i0:i1]
            icbs = prac["icb_code"].astype(str).to_numpy()[i0:i1]
            own = np.array([org_index[c] for c in codes], dtype=np.int64)
            pb = popn.PracticeBatch(
                org=own,
                count=counts[i0:i1],
                rate=attrs["rate"][i0:i1],
                trust_share=attrs["trust_share"][i0:i1],
                trust_org=[trusts[i][0] for i in icbs],
                trust_p=[trusts[i][1] for i in icbs],
                neighbours=[pool_by_icb.get(i, np.empty(0, np.int64))[pool_by_icb.get(i, np.empty(0, np.int64)) != o]
                            for i, o in zip(icbs, own, strict=True)],
                london=attrs["london"][i0:i1],
                imd_base=attrs["imd_base"][i0:i1],
                lsoa_base=attrs["lsoa_base"][i0:i1],
                nhs=nhs_all[starts[i0]:starts[i1]],
            )
            tables = popn.generate_batch(ctx, pb, np.random.default_rng([seed, 1, b]))
            register += int(tables.pop("_register")[0])
            if pending is not None:
                pending.result()
            pending = pool.submit(write_all, tables)
            if progress:
                sys.stderr.write(f"synth: batch {b + 1}/{n_batches}, {starts[i1]:,} patients, "
                                 f"{writers['events'].rows:,} events, {time.perf_counter() - t0:.1f}s\n")
        if pending is not None:
            pending.result()
        for w in writers.values():
            w.commit()
    except BaseException:
        if pending is not None:
            pending.cancel()
        pool.shutdown(wait=True)
        for w in writers.values():
            w.abort()
        raise
    pool.shutdown(wait=True)

    return SynthSummary(
        out=out, format=fmt, scale=scale, area=scope.area, structure=structure, seed=seed, as_of=as_of,
        practices=len(prac), register=register, patients=writers["patients"].rows,
        registrations=writers["registrations"].rows, events=writers["events"].rows,
        medications=writers["medications"].rows, seconds=round(time.perf_counter() - t0, 2),
        files={t: w.final for t, w in writers.items()},
    )
