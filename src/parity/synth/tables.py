"""Arrow tables of a batch (patients, registrations, events), in canonical order."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parity.synth.model import ETHNIC, SEXES, Context, EventLog, day
from parity.synth.schema import ARROW_SCHEMAS


def nhs_strings(nhs: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(nhs, type=pa.int64()), pa.string())


def dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(np.asarray(days, dtype=np.int32), type=pa.int32(), mask=null)
    return arr.cast(pa.date32())


def _lookup(strings: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    idx = np.asarray(idx, dtype=np.int64)
    return pa.array(list(strings), type=pa.string()).take(pa.array(idx, mask=idx < 0))


_MIN_DAY = day(date(1880, 1, 1))


def by_patient_and_day(p: np.ndarray, d: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """Order by patient, day, then ``tie`` (uint16), else generation order: stable 16-bit radix sorts."""
    assert p.size == 0 or p.max() < 2**16, "batch too large for 16-bit patient keys"
    order = np.arange(len(p)) if tie is None else np.argsort(tie, kind="stable")
    days = np.clip(d - _MIN_DAY, 0, 2**16 - 1).astype(np.uint16)
    order = order[np.argsort(days[order], kind="stable")]
    return order[np.argsort(p[order].astype(np.uint16), kind="stable")]


def _row_hash16(code: np.ndarray, val: np.ndarray, unit: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """A 16-bit hash of the rest of an event row, so exact repeats sort next to each other."""
    with np.errstate(over="ignore"):
        h = code.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= np.nan_to_num(val, nan=-1.0).view(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= (unit.astype(np.uint64) << np.uint64(32)) ^ rb.astype(np.int64).view(np.uint64)
        h *= np.uint64(0x94D049BB133111EB)
    return (h >> np.uint64(48)).astype(np.uint16)


def events_table(ctx: Context, ev: EventLog, nhs: np.ndarray) -> pa.Table:
    p, d, code, val, unit, rb = ev.columns()
    order = by_patient_and_day(p, d, _row_hash16(code, val, unit, rb))
    order = order[d[order] <= ctx.as_of]  # never after the reporting date
    p, d, code, val, unit, rb = p[order], d[order], code[order], val[order], unit[order], rb[order]
    # a row that repeats the one before it exactly (e.g. two blood tests on a day) is recorded once
    same = np.ones(len(p), dtype=bool)
    same[0:1] = False
    for col in (p, d, code, unit, rb):
        same[1:] &= col[1:] == col[:-1]
    same[1:] &= (val[1:] == val[:-1]) | (np.isnan(val[1:]) & np.isnan(val[:-1]))
    keep = ~same
    p, d, code, val, unit, rb = p[keep], d[keep], code[keep], val[keep], unit[keep], rb[keep]
    return pa.table({
        "nhs_number": nhs_strings(nhs).take(pa.array(p)),
        "date": dates(d),
        "snomed_code": pa.array(code, type=pa.int64()),
        "value": pa.array(val, type=pa.float64(), mask=np.isnan(val)),
        "unit": _lookup(ctx.units.names, unit),
        "recorded_by": _lookup(ctx.org_codes, rb),
    }, schema=ARROW_SCHEMAS["events"])


# Synthetic direct-care details (canonical extract's optional columns), a pure function of the NHS number so
# the rest of the generator's random stream is untouched. Names are common English names in no real pairing;
# phone numbers are in Ofcom's range reserved for drama (07700 900000-900999), which reaches nobody.
GIVEN_NAMES = ("Alex", "Sam", "Jordan", "Charlie", "Jamie", "Morgan", "Robin", "Chris", "Taylor", "Casey", "Ali",
               "Jo", "Kit", "Pat", "Ashley", "Frankie", "Billie", "Drew", "Rowan", "Ellis")
FAMILY_NAMES = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
                "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Khan", "Clarke")
PREFERRED = ("phone", "sms", "letter", "phone", "sms", "email")


def direct_care_columns(nhs: np.ndarray) -> dict[str, pa.Array]:
    """``given_name``, ``family_name``, ``phone`` and ``preferred_contact`` for each NHS number (int64)."""
    n = np.asarray(nhs, dtype=np.int64)
    given = (n // 10) % len(GIVEN_NAMES)
    family = (n // 1000) % len(FAMILY_NAMES)
    phone = pc.binary_join_element_wise(
        "07700 900", pc.utf8_lpad(pc.cast(pa.array(n % 1000), pa.string()), 3, "0"), "")
    return {"given_name": _lookup(GIVEN_NAMES, given), "family_name": _lookup(FAMILY_NAMES, family),
            "phone": phone, "preferred_contact": _lookup(PREFERRED, (n // 7) % len(PREFERRED))}


def patients_table(nhs, dob, sex, eth, lsoa, imd, death) -> pa.Table:
    lsoa_s = pc.binary_join_element_wise(
        "E01", pc.utf8_lpad(pc.cast(pa.array(np.maximum(lsoa, 0)), pa.string()), 6, "0"), "")
    lsoa_s = pc.if_else(pa.array(lsoa < 0), pa.scalar(None, pa.string()), lsoa_s)
    return pa.table({
        "nhs_number": nhs_strings(nhs),
        "date_of_birth": dates(dob),
        "sex": _lookup(SEXES, sex),
        "ethnicity": _lookup(ETHNIC[:-1], np.where(eth == len(ETHNIC) - 1, -1, eth)),
        "lsoa": lsoa_s,
        "imd_decile": pa.array(imd, type=pa.int16(), mask=imd < 0),
        "date_of_death": dates(np.maximum(death, 0), death < 0),
        **direct_care_columns(nhs),
    }, schema=ARROW_SCHEMAS["patients"])


def registrations_table(ctx, nhs, cur_org, cur_start, cur_end, moved, prev_org, prev_start, prev_end) -> pa.Table:
    mv = np.nonzero(moved)[0]
    n = len(nhs)
    who = np.concatenate([mv, np.arange(n)])
    org = np.concatenate([prev_org[mv], cur_org])
    s = np.concatenate([prev_start[mv], cur_start])
    e = np.concatenate([prev_end[mv], cur_end])
    order = np.lexsort((s, who))
    who, org, s, e = who[order], org[order], s[order], e[order]
    return pa.table({
        "nhs_number": nhs_strings(nhs).take(pa.array(who)),
        "practice_code": _lookup(ctx.org_codes, org),
        "start_date": dates(s),
        "end_date": dates(np.maximum(e, 0), e < 0),
    }, schema=ARROW_SCHEMAS["registrations"])
