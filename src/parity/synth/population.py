"""Generate one batch of practices: patients, registrations, events and medications.

Everything is vectorised over the patients of a batch (numpy, no per-row Python). Dates are whole
days since 1970-01-01 (int64) until the tables are built. The model, its parameters and where
they come from are documented in ``parity/synth/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parity.synth import reference as ref
from parity.synth.schema import ARROW_SCHEMAS

EPOCH = date(1970, 1, 1)
YEAR = 365.25


def day(d: date) -> int:
    return (d - EPOCH).days


# --------------------------------------------------------------------------- parameters

# Age on the reporting date of people on an SMI register: mostly 25-75 (bands, share).
AGE_BANDS = np.array([
    (14, 18, 0.006), (18, 25, 0.045), (25, 35, 0.150), (35, 45, 0.190), (45, 55, 0.210),
    (55, 65, 0.190), (65, 75, 0.115), (75, 85, 0.065), (85, 100, 0.029),
])
SEXES = ("male", "female", "unknown", "intersex")
SEX_P = np.array([0.52, 0.4785, 0.001, 0.0005])
# NHS ethnic category letters (data dictionary ETHNIC CATEGORY); "" = not recorded (null).
ETHNIC = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z", "")
ETHNIC_P = np.array([.72, .01, .055, .008, .004, .005, .008, .025, .02, .008, .015, .022, .025, .01,
                     .004, .015, .02, .026])
ETHNIC_P_LONDON = np.array([.40, .02, .12, .015, .008, .012, .02, .06, .035, .035, .04, .06, .07, .025,
                            .01, .04, .02, .01])
LONDON = "Y56"

# All-six rate in the latest 12 months, by ICB: a fixed point in a band (South East lower, as in
# the SDCS series: SE 59.4% vs England 68.5% in Q4 2023/24, clinical-spec §5).
RATE_BAND_SE = (0.46, 0.72)
RATE_BAND_OTHER = (0.55, 0.85)
PRACTICE_LOGIT_SD = 0.5
# Earlier 12-month windows had lower completion (national trend 2021/22 -> 2023/24).
YEAR_FACTOR = (0.74, 0.87, 1.0)
# Chance that a patient's attendance in one year simply repeats the previous year (engagement).
PERSIST = 0.6
# Probability each element is recorded at an annual review the patient attends. Lipids and
# glucose (bloods) are missed most often; smoking and BP least (Q4 2023/24 element counts).
CHECKS = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")
P_AT_REVIEW = {"bmi": .975, "blood_pressure": .985, "lipids": .93, "glucose": .95, "alcohol": .965,
               "smoking": .985}
P_ALL_AT_REVIEW = float(np.prod(list(P_AT_REVIEW.values())))
# Probability (per 12 months) that a non-attender has the element recorded opportunistically.
P_OPPORTUNISTIC = {"bmi": .10, "blood_pressure": .06, "lipids": .06, "glucose": .03, "alcohol": .09,
                   "smoking": .21}
P_DECLINE_AT_REVIEW = 0.35   # element not done at a review -> declined code
P_DECLINE_OTHERWISE = 0.04   # non-attender declines an element by phone/letter
P_EXCEPTION = 0.03           # non-attender given a QOF MH exception code (MHEXC_COD) in a year
TRUST_SHARE_BAND = (0.10, 0.30)  # share of reviews delivered by the mental-health trust, per ICB
REMISSION_ATTENDANCE = 0.3   # relative attendance once in remission

P_MOVED_IN = 0.07       # registered at another practice earlier in the 3 years (moved practice)
P_NEW = 0.06            # registered from outside during the 3 years
P_LEFT = 0.03           # left the practice (moved away) during the 3 years
P_INCIDENT = 0.07       # first diagnosed during the 3 years
P_REMISSION = 0.08      # has a remission code
P_REDIAGNOSED = 0.25    # of those, diagnosed again later
P_EXTRA_MH = 0.3        # has a later repeat diagnosis code
P_ANTIPSYCHOTIC = 0.82
P_SWITCH = 0.12
NOISE_PER_YEAR = 12.5   # everyday codes per patient-year at noise=1.0
P_TRUST_NOISE = 0.02    # everyday codes recorded by the trust
P_NULL_RECORDER = 0.01  # everyday codes with no recording organisation

# Diagnosis codes most used in practice first (the rest of MH_COD on a long tail).
MH_PREFERRED = {58214004: 25, 64905009: 14, 13746004: 20, 371596008: 5, 83225003: 3, 68890003: 7,
                69322001: 10, 191526005: 3}
# Common codes of other clusters (weights); codes not listed follow on a long tail.
PREFERRED = {
    "SYSBP_COD": {72313002: 85, 163030003: 12},
    "DIABP_COD": {1091811000000102: 85, 163031004: 12},
    "BP_COD": {163020007: 70, 75367002: 30},
    "BMIVAL_COD": {60621009: 95},
    "WEIGHT_COD": {27113001: 80, 162763007: 15},
    "CHOL2_COD": {1005671000000105: 55, 994351000000103: 30, 1017161000000104: 10},
    "HDLCCHOL_COD": {1005681000000107: 70, 1010581000000101: 20},
    "TCHOLHDL_COD": {1015681000000109: 45, 1028551000000102: 30, 166842003: 10},
    "QRISKSCORE_COD": {1085871000000105: 70, 718087004: 25},
    "IFCCHBAM_COD": {999791000000106: 60, 1049321000000109: 30},
    "GLUC_COD": {997681000000108: 50, 1003131000000101: 25, 1003141000000105: 15},
    "LSMOK_COD": {77176002: 30, 65568007: 20, 160603005: 10, 160604004: 10, 160605003: 8, 230059006: 3,
                  160616005: 3},
    "EXSMOK_COD": {8517006: 50, 281018007: 20, 160617001: 10, 1092031000000108: 5},
    "NSMOK_COD": {266919005: 95},
    "PLSRATE_COD": {78564009: 60, 364075005: 40},
    "MEDRVW_COD": {314530002: 30, 88551000000109: 20, 182836005: 10, 719329004: 10, 1239511000000100: 5},
    "ILLSUBASS_COD": {228367002: 50, 228368007: 20, 417284009: 8, 424848002: 5, 240961000000100: 4},
    "DM_COD": {44054006: 70, 73211009: 10, 46635009: 5},
    "CHD_COD": {53741008: 30, 194828000: 30, 22298006: 20, 414545008: 20},
    "HYP_COD": {38341003: 60, 59621000: 30, 10725009: 5},
    "AUDITC_COD": {763256006: 100},
}
# ALC_COD codes by meaning (used when present in the package list).
ALC_UNITS_WEEK = (1082641000000106, 160573003)           # carry a value in units/week
ALC_NON_DRINKER = (105542008, 783261004, 160579004)
ALC_LOWER_RISK = (160593006, 777671000000105, 228277002, 28127009)
ALC_INCREASING_RISK = (777631000000108, 43783005)
ALC_HIGHER_RISK = (777651000000101, 86933000)


# --------------------------------------------------------------------------- context


@dataclass
class Codes:
    """Code pickers for everything the generator records (None = cluster not available)."""

    mh: ref.Picker
    mhrem: ref.Picker
    sysbp: ref.Picker
    diabp: ref.Picker
    bp: ref.Picker | None
    bmival: ref.Picker
    bmi_cat: ref.Picker | None
    weight: ref.Picker | None
    chol: ref.Picker
    hdl: ref.Picker | None
    ratio: ref.Picker | None
    qrisk: ref.Picker | None
    hba1c: ref.Picker
    gluc: ref.Picker | None
    alc_units: ref.Picker | None    # ALC_COD codes carrying units/week
    alc_status: list[ref.Picker | None]  # ALC_COD status: non-drinker, lower, increasing, higher risk
    auditc: ref.Picker | None
    smoker: ref.Picker
    exsmoker: ref.Picker
    never: ref.Picker | None
    pulse: ref.Picker | None
    medrvw: ref.Picker | None
    illsub: ref.Picker | None
    dm: ref.Picker | None
    chd: ref.Picker | None
    hyp: ref.Picker | None
    mhexc: ref.Picker | None
    declined: dict[str, ref.Picker] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Codes:
        def opt(cluster: str, tail: float = 0.1, exclude: frozenset[int] = frozenset()) -> ref.Picker | None:
            ids = ref.cluster_ids(cluster)
            return None if not ids else ref.make_picker(ids, PREFERRED.get(cluster), tail, exclude)

        def req(cluster: str, tail: float = 0.1) -> ref.Picker:
            picker = ref.make_picker(ref.required(cluster), PREFERRED.get(cluster), tail)
            assert picker is not None
            return picker

        def subset(cluster: str, wanted: tuple[int, ...]) -> ref.Picker | None:
            have = set(ref.cluster_ids(cluster) or ())
            chosen = [c for c in wanted if c in have]
            return ref.make_picker(chosen) if chosen else None

        diagnosis = frozenset(ref.required("MH_COD"))
        remission = frozenset(ref.required("MHREM_COD"))
        mh = ref.make_picker(sorted(diagnosis), MH_PREFERRED, 0.15, exclude=remission)
        if mh is None:
            raise ref.ConfigurationError("MH_COD has no code outside MHREM_COD")
        # Remission codes that are not also diagnosis codes read most naturally (both count).
        mhrem = ref.make_picker(sorted(remission - diagnosis)) or req("MHREM_COD")
        blood = ref.cluster_ids("BLDTESTDEC_COD") or ()
        declined = {}
        for check, cluster in (("bmi", "BMIDEC_COD"), ("blood_pressure", "BPDEC_COD"),
                               ("lipids", "CHOLDEC_COD"), ("glucose", "GLUCDEC_COD"),
                               ("alcohol", "ALCDEC_COD"), ("smoking", "SMOKDEC_COD")):
            ids = list(ref.cluster_ids(cluster) or ())
            weights = dict.fromkeys(ids, 1.0)
            if check in ("lipids", "glucose"):  # "blood test declined" stands for either
                weights |= {c: 0.5 * max(len(ids), 1) / len(blood) for c in blood}
            if weights:
                declined[check] = ref.make_picker(list(weights), weights, 0.0)
        sys_dia = frozenset(ref.cluster_ids("SYSBP_COD") or ()) | frozenset(ref.cluster_ids("DIABP_COD") or ())
        alc_units = subset("ALC_COD", ALC_UNITS_WEEK)
        auditc = opt("AUDITC_COD")
        if alc_units is None and auditc is None:
            raise ref.ConfigurationError("ALC_COD has no units code and AUDITC_COD is not available")
        return cls(
            mh=mh, mhrem=mhrem, sysbp=req("SYSBP_COD"), diabp=req("DIABP_COD"),
            bp=opt("BP_COD", exclude=sys_dia),  # a BP code without a reading: not a systolic/diastolic one
            bmival=req("BMIVAL_COD"), bmi_cat=opt("BMI_COD"), weight=opt("WEIGHT_COD"),
            chol=req("CHOL2_COD"), hdl=opt("HDLCCHOL_COD"), ratio=opt("TCHOLHDL_COD"),
            qrisk=opt("QRISKSCORE_COD"), hba1c=req("IFCCHBAM_COD"), gluc=opt("GLUC_COD"),
            alc_units=alc_units,
            alc_status=[subset("ALC_COD", w) for w in (ALC_NON_DRINKER, ALC_LOWER_RISK, ALC_INCREASING_RISK,
                                                        ALC_HIGHER_RISK)],
            auditc=auditc, smoker=req("LSMOK_COD"), exsmoker=req("EXSMOK_COD"), never=opt("NSMOK_COD"),
            pulse=opt("PLSRATE_COD"), medrvw=opt("MEDRVW_COD"), illsub=opt("ILLSUBASS_COD"),
            dm=opt("DM_COD"), chd=opt("CHD_COD"), hyp=opt("HYP_COD"), mhexc=opt("MHEXC_COD"),
            declined=declined,
        )


@dataclass
class Noise:
    """Everyday codes (no check, register or risk cluster) with value distributions."""

    codes: np.ndarray
    kind: np.ndarray  # object array of kind names
    weight: np.ndarray
    unit: np.ndarray  # unit index (-1 none)
    mean: np.ndarray
    sd: np.ndarray
    decimals: np.ndarray

    @classmethod
    def load(cls, units: Units) -> Noise:
        banned: set[int] = set()
        for cluster in ref.measure_clusters() | set(USED_CLUSTERS):
            banned |= set(ref.cluster_ids(cluster) or ())
        rows = [r for r in ref.noise_codes_raw() if r.code not in banned]
        return cls(
            codes=np.array([r.code for r in rows], dtype=np.int64),
            kind=np.array([r.kind for r in rows], dtype=object),
            weight=np.array([r.weight for r in rows]),
            unit=np.array([units.index(r.unit) for r in rows], dtype=np.int64),
            mean=np.array([r.mean for r in rows]),
            sd=np.array([r.sd for r in rows]),
            decimals=np.array([r.decimals for r in rows], dtype=np.int64),
        )

    def of_kind(self, *kinds: str) -> np.ndarray:
        return np.nonzero(np.isin(self.kind, kinds))[0]


USED_CLUSTERS = ("MH_COD", "MHREM_COD", "SYSBP_COD", "DIABP_COD", "BP_COD", "BMIVAL_COD", "BMI_COD",
                 "WEIGHT_COD", "CHOL2_COD", "HDLCCHOL_COD", "TCHOLHDL_COD", "QRISKSCORE_COD",
                 "IFCCHBAM_COD", "GLUC_COD", "ALC_COD", "AUDITC_COD", "LSMOK_COD", "EXSMOK_COD",
                 "NSMOK_COD", "PLSRATE_COD", "MEDRVW_COD", "ILLSUBASS_COD", "DM_COD", "CHD_COD", "HYP_COD",
                 "BMIDEC_COD", "BPDEC_COD", "CHOLDEC_COD", "GLUCDEC_COD", "ALCDEC_COD", "SMOKDEC_COD",
                 "BLDTESTDEC_COD", "MHEXC_COD")


class Units:
    """Unit strings by index (index -1 = no unit)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def index(self, unit: str) -> int:
        if not unit:
            return -1
        if unit not in self.names:
            self.names.append(unit)
        return self.names.index(unit)


@dataclass
class Context:
    """Everything a batch needs that does not depend on the batch."""

    as_of: int
    windows: list[tuple[int, int]]  # the three 12-month windows, earliest first
    codes: Codes
    noise_level: float
    org_codes: list[str]  # recorded_by / practice code strings by index
    units: Units
    noise: Noise
    drugs: ref.Drugs
    flu_seasons: list[tuple[int, int]]

    @property
    def start(self) -> int:
        return self.windows[0][0]


@dataclass
class PracticeBatch:
    """Practice-level inputs of one batch (arrays aligned by practice)."""

    org: np.ndarray        # index of the practice code in Context.org_codes
    count: np.ndarray      # patients to generate
    rate: np.ndarray       # all-six rate target in the latest window
    trust_share: np.ndarray
    trust_org: list[np.ndarray]   # per practice: org indices of its trusts
    trust_p: list[np.ndarray]
    neighbours: list[np.ndarray]  # per practice: org indices of other practices in its ICB
    london: np.ndarray     # bool
    imd_base: np.ndarray
    lsoa_base: np.ndarray
    nhs: np.ndarray        # NHS numbers for all patients of the batch (int64)


# --------------------------------------------------------------------------- helpers


def uniform_days(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A whole day uniformly in [lo, hi] (hi < lo gives lo)."""
    lo = np.asarray(lo, dtype=np.int64)
    span = np.maximum(np.asarray(hi, dtype=np.int64) - lo + 1, 1)
    return lo + np.floor(rng.random(lo.shape) * span).astype(np.int64)


def choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(p / p.sum())
    return np.searchsorted(cum, rng.random(n), side="right").clip(0, len(p) - 1)


def grouped_choice(rng: np.random.Generator, groups: np.ndarray, options: list[np.ndarray],
                   probs: list[np.ndarray]) -> np.ndarray:
    """For each row, one of ``options[groups[row]]`` with probabilities ``probs[groups[row]]``."""
    out = np.full(len(groups), -1, dtype=np.int64)
    for g in np.unique(groups):
        rows = np.nonzero(groups == g)[0]
        if len(options[g]):
            out[rows] = options[g][choice(rng, probs[g], len(rows))]
    return out


class EventLog:
    """Columns of events, appended in vectorised blocks."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, pid: np.ndarray, when: np.ndarray, code: np.ndarray, value: np.ndarray | None = None,
            unit: int = -1, rb: np.ndarray | None = None) -> None:
        n = len(pid)
        if n == 0:
            return
        self.parts.append((
            pid.astype(np.int32),
            np.broadcast_to(np.asarray(when, dtype=np.int32), (n,)),
            np.broadcast_to(np.asarray(code, dtype=np.int64), (n,)),
            np.full(n, np.nan) if value is None else np.asarray(value, dtype=float),
            np.full(n, unit, dtype=np.int16),
            np.full(n, -1, dtype=np.int32) if rb is None else np.asarray(rb, dtype=np.int32),
        ))

    DTYPES = (np.int32, np.int32, np.int64, np.float64, np.int16, np.int32)

    def columns(self) -> tuple[np.ndarray, ...]:
        if not self.parts:
            return tuple(np.empty(0, dtype=t) for t in self.DTYPES)
        return tuple(np.concatenate([p[i] for p in self.parts]) for i in range(6))


# --------------------------------------------------------------------------- the batch


def generate_batch(ctx: Context, pb: PracticeBatch, rng: np.random.Generator) -> dict[str, pa.Table]:
    """Patients of one batch of practices and all their records, as Arrow tables."""
    n_prac = len(pb.count)
    prac = np.repeat(np.arange(n_prac), pb.count)
    n = len(prac)
    pid = np.arange(n)
    as_of, start = ctx.as_of, ctx.start

    # ---- demographics
    band = choice(rng, AGE_BANDS[:, 2], n)
    age = AGE_BANDS[band, 0] + rng.random(n) * (AGE_BANDS[band, 1] - AGE_BANDS[band, 0])
    dob = as_of - np.floor(age * YEAR).astype(np.int64)
    sex = choice(rng, SEX_P, n)
    male = sex == 0
    eth = np.where(pb.london[prac], choice(rng, ETHNIC_P_LONDON, n), choice(rng, ETHNIC_P, n))
    imd = np.clip(np.rint(pb.imd_base[prac] + rng.normal(0, 1.8, n) - 0.6), 1, 10).astype(np.int64)
    imd[rng.random(n) < 0.03] = -1
    lsoa = pb.lsoa_base[prac] + rng.integers(0, 90, n)
    lsoa[rng.random(n) < 0.02] = -1

    # ---- registration history
    moved = rng.random(n) < P_MOVED_IN
    new = ~moved & (rng.random(n) < P_NEW)
    recent = moved | new
    cur_start = np.where(
        recent, uniform_days(rng, np.full(n, start + 30), np.full(n, as_of - 14)),
        start - 1 - np.floor(rng.exponential(9 * YEAR, n)).astype(np.int64))
    cur_start = np.maximum(cur_start, dob)
    prev_start = np.maximum(cur_start - 30 - np.floor(rng.exponential(8 * YEAR, n)).astype(np.int64), dob)
    prev_end = cur_start - rng.integers(1, 22, n)
    prev_end = np.maximum(prev_end, prev_start)
    prev_org = np.full(n, -1, dtype=np.int64)
    mv = np.nonzero(moved)[0]
    if len(mv):
        sizes = np.array([len(pb.neighbours[p]) for p in range(n_prac)])
        has_pool = sizes[prac[mv]] > 0
        mv_ok = mv[has_pool]
        k = np.floor(rng.random(len(mv_ok)) * sizes[prac[mv_ok]]).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1]
        pool = np.concatenate([*pb.neighbours, np.empty(0, dtype=np.int64)]).astype(np.int64)
        prev_org[mv_ok] = pool[offsets[prac[mv_ok]] + k]
        moved[mv[~has_pool]] = False
    first_start = np.where(moved, prev_start, cur_start)

    # ---- diagnosis
    onset = 16 + rng.gamma(2.2, 5.5, n)
    onset = np.minimum(onset, np.maximum(age - 0.3, 14))
    diag = dob + np.floor(onset * YEAR).astype(np.int64)
    incident = rng.random(n) < P_INCIDENT
    diag = np.where(incident, uniform_days(rng, np.full(n, start), np.full(n, as_of - 30)), diag)
    diag = np.clip(np.maximum(diag, dob + int(14 * YEAR)), None, as_of - 1)

    # ---- death and leaving
    hazard = np.clip(0.0012 * np.exp(0.085 * (age - 30)), 0.0008, 0.35)
    died = rng.random(n) < 1 - np.exp(-3 * hazard)
    death = uniform_days(rng, np.maximum(np.maximum(cur_start, start), diag + 1), np.full(n, as_of))
    death = np.where(died & (death <= as_of), death, -1)
    died = death >= 0
    left = ~died & (rng.random(n) < P_LEFT)
    leave_day = uniform_days(rng, np.maximum(np.maximum(cur_start, start), diag) + 30, np.full(n, as_of - 1))
    left &= leave_day < as_of
    cur_end = np.where(died, death, np.where(left, leave_day, -1))
    act_start = np.maximum(first_start, start)
    act_end = np.where(cur_end >= 0, cur_end, as_of)
    ok = act_end >= act_start
    act_end = np.where(ok, act_end, act_start)

    # ---- remission
    rem = rng.random(n) < P_REMISSION
    rem_lo, rem_hi = diag + 365, act_end - 30
    rem &= rem_hi > rem_lo
    rem_day = uniform_days(rng, rem_lo, rem_hi)
    rediag = rem & (rng.random(n) < P_REDIAGNOSED) & (act_end - rem_day > 120)
    rediag_day = uniform_days(rng, rem_day + 60, act_end)
    in_remission = rem & ~rediag
    on_register = ~died & (cur_end < 0) & ~in_remission

    # ---- clinical attributes
    height = np.where(male, rng.normal(1.76, 0.07, n), rng.normal(1.63, 0.065, n))
    bmi0 = np.clip(rng.normal(30, 6, n), 15, 60)
    bmi_drift = rng.normal(0.3, 0.8, n)
    sbp0 = np.clip(rng.normal(124 + 0.35 * (age - 45), 14, n), 90, 200)
    dbp0 = np.clip(rng.normal(79, 8, n) + 0.25 * (sbp0 - 125), 50, 120)
    tc0 = np.clip(rng.normal(5.0, 1.1, n), 2.2, 10.5)
    hdl0 = np.clip(np.where(male, rng.normal(1.2, 0.3, n), rng.normal(1.45, 0.35, n)), 0.5, 3.2)
    dm = rng.random(n) < np.clip(0.02 + 0.0035 * (age - 20), 0.01, 0.30)
    dm_day = uniform_days(rng, np.maximum(dob + int(20 * YEAR), as_of - int(25 * YEAR)), act_end)
    chd = rng.random(n) < np.clip(0.0022 * (age - 32), 0, 0.25)
    chd_day = uniform_days(rng, np.maximum(dob + int(35 * YEAR), as_of - int(20 * YEAR)), act_end)
    hyp = rng.random(n) < np.clip(0.0045 * (age - 25), 0, 0.5)
    hyp_day = uniform_days(rng, np.maximum(dob + int(25 * YEAR), as_of - int(20 * YEAR)), act_end)
    hba0 = np.where(dm, rng.normal(60, 13, n), rng.normal(37.5, 4.5, n))
    smoke = choice(rng, np.array([0.40, 0.25, 0.35]), n)  # 0 current, 1 ex, 2 never
    quit_day = np.where((smoke == 0) & (rng.random(n) < 0.08), uniform_days(rng, np.full(n, start), act_end), -1)
    drinks = rng.random(n) > 0.35
    units_wk = np.where(drinks, rng.lognormal(2.0, 0.9, n), 0.0)
    audit0 = np.where(drinks, np.clip(np.log2(units_wk + 1) * 1.4 + rng.normal(0, 1, n), 1, 12), 0.0)
    ratio0 = tc0 / hdl0
    lin = (-7.9 + 0.078 * age + 0.5 * male + 0.6 * (smoke == 0) + 0.012 * (sbp0 - 120)
           + 0.2 * (ratio0 - 4) + 0.7 * dm + 0.9 * chd)
    qrisk0 = 100 / (1 + np.exp(-lin))

    # ---- checks, year by year
    ev = EventLog()
    blood = []  # (pid, day, recorder) of blood tests, for the laboratory panels
    cur_org = pb.org[prac]

    def recorder_at(who: np.ndarray, when: np.ndarray) -> np.ndarray:
        """The practice holding the registration on the day (null before the first registration)."""
        org = np.where(moved[who] & (when < cur_start[who]), prev_org[who], cur_org[who])
        return np.where(when >= first_start[who], org, -1)

    v = {"bmi0": bmi0, "bmi_drift": bmi_drift, "height": height, "sbp0": sbp0, "dbp0": dbp0, "tc0": tc0,
         "hdl0": hdl0, "age": age, "qrisk0": qrisk0, "hba0": hba0, "dm": dm, "units_wk": units_wk,
         "audit0": audit0, "smoke": smoke, "quit_day": quit_day}
    u_person = rng.random(n)
    u_prev = u_person
    anchor = _anchor_day_of_year(rng, n)
    trust_review_org = grouped_choice(rng, prac, pb.trust_org, pb.trust_p)
    attend_p = np.clip(pb.rate[prac] / P_ALL_AT_REVIEW, 0, 0.97)
    chk_start = np.maximum(act_start, diag)
    c = ctx.codes
    units = ctx.units
    u_mmhg, u_min, u_mmolmol = units.index("mmHg"), units.index("/min"), units.index("mmol/mol")

    for y, (ws, we) in enumerate(ctx.windows):
        lo = np.maximum(ws, chk_start)
        hi = np.minimum(we, act_end)
        days_in = hi - lo + 1
        elig = days_in >= 14
        frac = np.clip(days_in / (we - ws + 1), 0, 1)
        remitted = in_remission & (rem_day < ws)
        a = attend_p * YEAR_FACTOR[y] * np.where(remitted, REMISSION_ATTENDANCE, 1.0) * np.minimum(1, frac * 1.15)
        u = np.where(rng.random(n) < PERSIST, u_prev, rng.random(n))
        u_prev = u
        attend = elig & (u < a)
        ws_doy = int((np.datetime64(ws, "D") - np.datetime64(ws, "D").astype("datetime64[Y]")).astype(int))
        review = ws + (anchor - ws_doy) % 365 + np.rint(rng.normal(0, 15, n)).astype(np.int64)
        review = np.clip(review, lo, np.maximum(hi, lo))
        by_trust = attend & (rng.random(n) < pb.trust_share[prac])
        rb_review = np.where(by_trust, trust_review_org, -1)
        rb_review = np.where(rb_review < 0, recorder_at(pid, review), rb_review)
        # bloods: same day, a week or two before the review, or a little after
        shift = np.where(rng.random(n) < 0.5, 0, np.where(rng.random(n) < 0.6, -rng.integers(3, 15, n),
                                                         rng.integers(3, 22, n)))
        blood_day = np.clip(review + shift, lo, np.maximum(hi, lo))
        rb_blood = np.where(by_trust, rb_review, recorder_at(pid, blood_day))

        for check in CHECKS:
            done_review = attend & (rng.random(n) < P_AT_REVIEW[check])
            opp = elig & ~attend & (rng.random(n) < P_OPPORTUNISTIC[check] * frac)
            when_opp = uniform_days(rng, lo, hi)
            is_blood = check in ("lipids", "glucose")
            when = np.where(done_review, blood_day if is_blood else review, when_opp)
            rb = np.where(done_review, rb_blood if is_blood else rb_review, recorder_at(pid, when_opp))
            who = np.nonzero(done_review | opp)[0]
            _record_check(ctx, ev, rng, check, who, when[who], rb[who], y, v)
            if is_blood:
                blood.append((who[done_review[who]], when[who][done_review[who]], rb[who][done_review[who]]))
            # declines
            dec = c.declined.get(check)
            if dec is not None:
                d1 = np.nonzero(attend & ~done_review & (rng.random(n) < P_DECLINE_AT_REVIEW))[0]
                ev.add(d1, review[d1], dec.pick(rng, len(d1)), rb=rb_review[d1])
                d2 = np.nonzero(elig & ~attend & ~opp & (rng.random(n) < P_DECLINE_OTHERWISE))[0]
                w2 = uniform_days(rng, lo[d2], hi[d2])
                ev.add(d2, w2, dec.pick(rng, len(d2)), rb=recorder_at(d2, w2))

        # QOF mental-health exception (unsuitable / informed dissent) for some who never attend
        if c.mhexc is not None:
            who = np.nonzero(elig & ~attend & (rng.random(n) < P_EXCEPTION))[0]
            w = uniform_days(rng, lo[who], hi[who])
            ev.add(who, w, c.mhexc.pick(rng, len(who)), rb=recorder_at(who, w))

        # extras recorded at the review: pulse, medication review, illicit substances
        for picker, p, val in ((c.pulse, 0.6, "pulse"), (c.medrvw, 0.55, None), (c.illsub, 0.35, None)):
            if picker is None:
                continue
            who = np.nonzero(attend & (rng.random(n) < p))[0]
            value = np.rint(rng.normal(78, 11, len(who))).clip(45, 140) if val else None
            ev.add(who, review[who], picker.pick(rng, len(who)), value, u_min if val else -1, rb_review[who])

        # diabetes reviews (HbA1c, BP) and hypertension reviews (BP) outside the SMI review
        dm_now = elig & dm & (dm_day <= hi)
        who = np.nonzero(dm_now & (rng.random(n) < 0.8))[0]
        w = uniform_days(rng, lo[who], hi[who])
        hb = np.rint(np.clip(hba0[who] + rng.normal(0, 6, len(who)), 30, 140))
        ev.add(who, w, c.hba1c.pick(rng, len(who)), hb, u_mmolmol, recorder_at(who, w))
        blood.append((who, w, recorder_at(who, w)))
        who = np.nonzero(elig & ((dm & (dm_day <= hi)) | (hyp & (hyp_day <= hi))) & (rng.random(n) < 0.6))[0]
        w = uniform_days(rng, lo[who], hi[who])
        _bp(ev, rng, c, who, w, recorder_at(who, w), sbp0, dbp0, u_mmhg)

    # ---- diagnoses and remissions
    ev.add(pid, diag, c.mh.pick(rng, n), rb=recorder_at(pid, diag))
    extra = (rng.random(n) < P_EXTRA_MH) & ~rem
    extra_day = uniform_days(rng, diag + 30, act_end)
    who = np.nonzero(extra & (extra_day > diag) & (extra_day <= act_end))[0]
    ev.add(who, extra_day[who], c.mh.pick(rng, len(who)), rb=recorder_at(who, extra_day[who]))
    who = np.nonzero(rem)[0]
    ev.add(who, rem_day[who], c.mhrem.pick(rng, len(who)), rb=recorder_at(who, rem_day[who]))
    who = np.nonzero(rediag)[0]
    ev.add(who, rediag_day[who], c.mh.pick(rng, len(who)), rb=recorder_at(who, rediag_day[who]))
    for picker, has, when in ((c.dm, dm, dm_day), (c.chd, chd, chd_day), (c.hyp, hyp, hyp_day)):
        if picker is not None:
            who = np.nonzero(has & (when <= act_end))[0]
            ev.add(who, when[who], picker.pick(rng, len(who)), rb=recorder_at(who, when[who]))

    _noise(ctx, ev, rng, pid, dob, act_start, act_end, blood, recorder_at, pb.trust_org, prac)

    events = _events_table(ctx, ev, pb.nhs)
    meds = _medications(ctx, rng, pid, pb.nhs, act_start, act_end, diag, in_remission, rem_day, dm, chd,
                        qrisk0)

    # ---- patients and registrations
    patients = _patients_table(pb.nhs, dob, sex, eth, lsoa, imd, death)
    registrations = _registrations_table(ctx, pb.nhs, cur_org, cur_start, cur_end, moved, prev_org, prev_start,
                                         prev_end)
    return {
        "patients": patients, "registrations": registrations, "events": events, "medications": meds,
        "_register": np.array([int(on_register.sum())]),
    }


def _anchor_day_of_year(rng: np.random.Generator, n: int) -> np.ndarray:
    """Day of the year of each patient's annual review: more in January-March (QOF year end)."""
    month_w = np.array([1.2, 1.5, 1.8, 0.8, 0.8, 0.8, 0.7, 0.6, 0.8, 0.9, 1.0, 0.9])
    month_start = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
    month_len = np.diff(np.append(month_start, 365))
    m = choice(rng, month_w, n)
    return month_start[m] + np.floor(rng.random(n) * month_len[m]).astype(np.int64)


def _bp(ev: EventLog, rng: np.random.Generator, c: Codes, who: np.ndarray, when: np.ndarray, rb: np.ndarray,
        sbp0: np.ndarray, dbp0: np.ndarray, unit: int) -> None:
    k = len(who)
    sbp = np.rint(np.clip(sbp0[who] + rng.normal(0, 8, k), 80, 230))
    dbp = np.rint(np.clip(dbp0[who] + rng.normal(0, 6, k), 40, 140))
    dbp = np.minimum(dbp, sbp - 15)
    ev.add(who, when, c.sysbp.pick(rng, k), sbp, unit, rb)
    ev.add(who, when, c.diabp.pick(rng, k), dbp, unit, rb)
    if c.bp is not None:
        extra = rng.random(k) < 0.05
        ev.add(who[extra], when[extra], c.bp.pick(rng, int(extra.sum())), rb=rb[extra])


def _record_check(ctx: Context, ev: EventLog, rng: np.random.Generator, check: str, who: np.ndarray,
                  when: np.ndarray, rb: np.ndarray, y: int, v: dict) -> None:
    """Events that record one element of the check for patients ``who`` (values from ``v``)."""
    c, k, units = ctx.codes, len(who), ctx.units
    if k == 0:
        return
    if check == "bmi":
        bmi = np.clip(v["bmi0"][who] + v["bmi_drift"][who] * y + rng.normal(0, 0.6, k), 13, 75)
        cat = (rng.random(k) < 0.04) if c.bmi_cat is not None else np.zeros(k, bool)
        val = ~cat
        ev.add(who[val], when[val], c.bmival.pick(rng, int(val.sum())), np.round(bmi[val], 1),
               units.index("kg/m2"), rb[val])
        if cat.any():
            ev.add(who[cat], when[cat], c.bmi_cat.pick(rng, int(cat.sum())), rb=rb[cat])
        if c.weight is not None:
            wt = rng.random(k) < 0.8
            kg = np.round(bmi[wt] * v["height"][who[wt]] ** 2, 1)
            ev.add(who[wt], when[wt], c.weight.pick(rng, int(wt.sum())), kg, units.index("kg"), rb[wt])
    elif check == "blood_pressure":
        _bp(ev, rng, c, who, when, rb, v["sbp0"], v["dbp0"], units.index("mmHg"))
    elif check == "lipids":
        tc = np.round(np.clip(v["tc0"][who] + rng.normal(0, 0.35, k), 1.5, 12), 1)
        ev.add(who, when, c.chol.pick(rng, k), tc, units.index("mmol/L"), rb)
        if c.hdl is not None:
            s = rng.random(k) < 0.9
            hdl = np.round(np.clip(v["hdl0"][who[s]] + rng.normal(0, 0.1, int(s.sum())), 0.4, 3.5), 2)
            ev.add(who[s], when[s], c.hdl.pick(rng, int(s.sum())), hdl, units.index("mmol/L"), rb[s])
            if c.ratio is not None:
                r = rng.random(int(s.sum())) < 0.75
                ws = who[s][r]
                ev.add(ws, when[s][r], c.ratio.pick(rng, len(ws)), np.round(tc[s][r] / hdl[r], 1), -1, rb[s][r])
        if c.qrisk is not None:
            age_ok = (v["age"][who] >= 25) & (v["age"][who] < 85)
            s = age_ok & (rng.random(k) < 0.45)
            q = np.round(np.clip(v["qrisk0"][who[s]] * rng.lognormal(0, 0.1, int(s.sum())), 0.1, 80), 1)
            ev.add(who[s], when[s], c.qrisk.pick(rng, int(s.sum())), q, units.index("%"), rb[s])
    elif check == "glucose":
        gl = (rng.random(k) < 0.08) if c.gluc is not None else np.zeros(k, bool)
        hb = ~gl
        val = np.rint(np.clip(v["hba0"][who[hb]] + rng.normal(0, 3, int(hb.sum())), 20, 140))
        ev.add(who[hb], when[hb], c.hba1c.pick(rng, int(hb.sum())), val, units.index("mmol/mol"), rb[hb])
        if gl.any():
            dmw = v["dm"][who[gl]]
            g = np.round(np.where(dmw, rng.normal(8.5, 2.5, dmw.size), rng.normal(5.3, 0.7, dmw.size)).clip(2.5, 30), 1)
            ev.add(who[gl], when[gl], c.gluc.pick(rng, int(gl.sum())), g, units.index("mmol/L"), rb[gl])
    elif check == "alcohol":
        # a units/week figure (40%), a drinking-status code (35%) or an AUDIT-C score (25%)
        uw = v["units_wk"][who]
        level = np.where(uw <= 0, 0, np.where(uw <= 14, 1, np.where(uw <= 35, 2, 3)))
        pick = rng.random(k)
        how = np.where(pick < 0.35, 1, np.where(pick < 0.75, 0, 2))  # 0 units, 1 status, 2 AUDIT-C
        status_ok = np.array([p is not None for p in c.alc_status])
        how = np.where((how == 1) & ~status_ok[level], 0, how)
        if c.alc_units is None:
            how = np.where(how == 0, 2, how)
        if c.auditc is None:
            how = np.where(how == 2, 0, how)
        s = how == 0
        if s.any():
            ev.add(who[s], when[s], c.alc_units.pick(rng, int(s.sum())),
                   np.rint(uw[s] * rng.lognormal(0, 0.2, int(s.sum()))), units.index("units/week"), rb[s])
        for lv, picker in enumerate(c.alc_status):
            s = (how == 1) & (level == lv)
            if picker is not None and s.any():
                ev.add(who[s], when[s], picker.pick(rng, int(s.sum())), rb=rb[s])
        s = how == 2
        if s.any():
            base = v["audit0"][who[s]]
            score = np.where(base == 0, 0, np.clip(np.rint(base + rng.normal(0, 0.7, len(base))), 0, 12))
            ev.add(who[s], when[s], c.auditc.pick(rng, int(s.sum())), score, -1, rb[s])
    elif check == "smoking":
        status = v["smoke"][who]
        quit_ = v["quit_day"][who]
        status = np.where((status == 0) & (quit_ >= 0) & (when >= quit_), 1, status)
        never_p = c.never if c.never is not None else c.exsmoker
        code = np.where(status == 0, c.smoker.pick(rng, k),
                        np.where(status == 1, c.exsmoker.pick(rng, k), never_p.pick(rng, k)))
        ev.add(who, when, code, rb=rb)


def _noise(ctx: Context, ev: EventLog, rng: np.random.Generator, pid: np.ndarray, dob: np.ndarray,
           act_start: np.ndarray, act_end: np.ndarray, blood: list, recorder_at, trust_org, prac) -> None:
    """Everyday records that belong to no check: admin, observations, labs, conditions, flu jabs."""
    nz, level = ctx.noise, ctx.noise_level
    if level <= 0 or len(nz.codes) == 0:
        return
    full = min(level, 1.0)
    n = len(pid)

    def values(idx: np.ndarray) -> np.ndarray:
        raw = nz.mean[idx] + nz.sd[idx] * rng.standard_normal(len(idx))
        raw = np.maximum(raw, 0.1 * nz.mean[idx])
        scale = 10.0 ** nz.decimals[idx]
        return np.rint(raw * scale) / scale

    # generic everyday codes over the registered period
    generic = nz.of_kind("admin", "obs", "ue", "fbc", "lft")
    if len(generic):
        years = (act_end - act_start + 1) / YEAR
        count = rng.poisson(NOISE_PER_YEAR * level * years)
        who = np.repeat(pid, count)
        when = uniform_days(rng, act_start[who], act_end[who])
        k = generic[choice(rng, nz.weight[generic], len(who))]
        rb = recorder_at(who, when)
        special = rng.random(len(who))
        tr = special < P_TRUST_NOISE
        if tr.any():
            tr_org = np.array([t[0] if len(t) else -1 for t in trust_org])[prac[who[tr]]]
            rb[tr] = np.where(tr_org >= 0, tr_org, rb[tr])
        rb[(special >= P_TRUST_NOISE) & (special < P_TRUST_NOISE + P_NULL_RECORDER)] = -1
        _add_coded(ev, who, when, k, values(k), nz, rb)

    # laboratory panels taken with the check bloods
    if blood:
        bw = np.concatenate([b[0] for b in blood])
        bd = np.concatenate([b[1] for b in blood])
        br = np.concatenate([b[2] for b in blood])
        for kind, p in (("ue", 0.75), ("fbc", 0.6), ("lft", 0.5)):
            idx = nz.of_kind(kind)
            if not len(idx):
                continue
            sel = rng.random(len(bw)) < p * full
            for k1 in idx:
                kk = np.full(int(sel.sum()), k1)
                _add_coded(ev, bw[sel], bd[sel], kk, values(kk), nz, br[sel])

    # long-term conditions and one-off problems (weight = prevalence)
    for k1 in nz.of_kind("diagnosis"):
        has = rng.random(n) < nz.weight[k1] * full
        who = pid[has]
        when = uniform_days(rng, np.minimum(dob[who] + int(16 * YEAR), act_end[who]), act_end[who])
        rb = recorder_at(who, when)
        _add_coded(ev, who, when, np.full(len(who), k1), np.full(len(who), np.nan), nz, rb)

    # seasonal flu vaccination
    for k1 in nz.of_kind("flu"):
        for s_lo, s_hi in ctx.flu_seasons:
            lo, hi = np.maximum(act_start, s_lo), np.minimum(act_end, s_hi)
            has = (hi >= lo) & (rng.random(n) < nz.weight[k1] * full)
            who = pid[has]
            when = uniform_days(rng, lo[who], hi[who])
            _add_coded(ev, who, when, np.full(len(who), k1), np.full(len(who), np.nan), nz,
                       recorder_at(who, when))


def _add_coded(ev: EventLog, who, when, k, vals, nz: Noise, rb) -> None:
    if len(who) == 0:
        return
    units = nz.unit[k]
    for u in np.unique(units):
        s = units == u
        ev.add(who[s], when[s], nz.codes[k[s]], vals[s], int(u), rb[s])


# --------------------------------------------------------------------------- medications


def _medications(ctx: Context, rng: np.random.Generator, pid, nhs, act_start, act_end, diag, in_remission,
                 rem_day, dm, chd, qrisk0) -> pa.Table:
    d = ctx.drugs
    n = len(pid)
    ap_groups = [g for g, kind in enumerate(d.kind) if kind in ("oral", "depot")]
    group_w = {"olanzapine": 25, "aripiprazole": 20, "quetiapine": 18, "risperidone": 12, "amisulpride": 5,
               "clozapine": 3, "lurasidone": 2, "haloperidol": 3, "chlorpromazine": 1, "flupentixol": 1,
               "depot": 10}
    gw = np.array([group_w.get(d.groups[g], 1.0) for g in ap_groups])
    products_by_group = [np.nonzero(d.group == g)[0] for g in range(len(d.groups))]
    probs_by_group = [d.weight[p] for p in products_by_group]

    def product_of(groups: np.ndarray) -> np.ndarray:
        return grouped_choice(rng, groups, products_by_group, probs_by_group)

    on_ap = rng.random(n) < np.where(in_remission, 0.4, P_ANTIPSYCHOTIC)
    g1 = np.array(ap_groups)[choice(rng, gw, n)]
    g2 = np.array(ap_groups)[choice(rng, gw, n)]
    prod1, prod2 = product_of(g1), product_of(g2)
    statin_g = [g for g, kind in enumerate(d.kind) if kind == "statin"]
    on_statin = np.zeros(n, bool)
    prod_statin = np.full(n, -1)
    if statin_g:
        on_statin = rng.random(n) < np.where(chd | dm, 0.7, np.where(qrisk0 >= 10, 0.45, 0.03))
        prod_statin = product_of(np.full(n, statin_g[0]))
    parts = []
    # antipsychotics from diagnosis (some stop in remission); statins throughout
    ap_begin = np.maximum(act_start, diag + 14)
    ap_end = np.where(in_remission & (rng.random(n) < 0.5), np.minimum(act_end, rem_day + 90), act_end)
    for on, p1, p2, switch_p, begin, end in ((on_ap, prod1, prod2, P_SWITCH, ap_begin, ap_end),
                                             (on_statin, prod_statin, prod_statin, 0.0, act_start, act_end)):
        depot = np.isin(d.group[np.maximum(p1, 0)], [g for g, k in enumerate(d.kind) if k == "depot"])
        interval = np.where(depot, 28, np.where(rng.random(n) < 0.55, 28, 56))
        first = begin + np.floor(rng.random(n) * interval).astype(np.int64)
        count = np.where(on & (p1 >= 0) & (first <= end), (end - first) // interval + 1, 0)
        who = np.repeat(pid, count)
        if not len(who):
            continue
        starts = np.cumsum(count) - count
        seq = np.arange(len(who)) - np.repeat(starts, count)
        when = first[who] + seq * interval[who] + rng.integers(-3, 4, len(who))
        when = np.clip(when, begin[who], end[who])
        switch_at = np.where(rng.random(n) < switch_p, uniform_days(rng, begin, end), np.iinfo(np.int64).max)
        prod = np.where(when >= switch_at[who], p2[who], p1[who])
        parts.append((who, when, prod))
    if parts:
        who = np.concatenate([p[0] for p in parts])
        when = np.concatenate([p[1] for p in parts])
        prod = np.concatenate([p[2] for p in parts])
    else:
        who = when = prod = np.empty(0, dtype=np.int64)
    order = _by_patient_and_day(who, when)
    who, when, prod = who[order], when[order], prod[order]
    bnf = pa.array(d.bnf, type=pa.string())
    return pa.table({
        "nhs_number": _nhs_strings(nhs).take(pa.array(who)),
        "date": _dates(when),
        "dmd_code": pa.array(d.dmd[prod], type=pa.int64()),
        "bnf_code": bnf.take(pa.array(prod)),
    }, schema=ARROW_SCHEMAS["medications"])


# --------------------------------------------------------------------------- tables


def _nhs_strings(nhs: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(nhs, type=pa.int64()), pa.string())


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    arr = pa.array(np.asarray(days, dtype=np.int32), type=pa.int32(), mask=null)
    return arr.cast(pa.date32())


def _lookup(strings: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    idx = np.asarray(idx, dtype=np.int64)
    return pa.array(list(strings), type=pa.string()).take(pa.array(idx, mask=idx < 0))


_MIN_DAY = day(date(1880, 1, 1))


def _by_patient_and_day(p: np.ndarray, d: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
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


def _events_table(ctx: Context, ev: EventLog, nhs: np.ndarray) -> pa.Table:
    p, d, code, val, unit, rb = ev.columns()
    order = _by_patient_and_day(p, d, _row_hash16(code, val, unit, rb))
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
        "nhs_number": _nhs_strings(nhs).take(pa.array(p)),
        "date": _dates(d),
        "snomed_code": pa.array(code, type=pa.int64()),
        "value": pa.array(val, type=pa.float64(), mask=np.isnan(val)),
        "unit": _lookup(ctx.units.names, unit),
        "recorded_by": _lookup(ctx.org_codes, rb),
    }, schema=ARROW_SCHEMAS["events"])


def _patients_table(nhs, dob, sex, eth, lsoa, imd, death) -> pa.Table:
    lsoa_s = pc.binary_join_element_wise(
        "E01", pc.utf8_lpad(pc.cast(pa.array(np.maximum(lsoa, 0)), pa.string()), 6, "0"), "")
    lsoa_s = pc.if_else(pa.array(lsoa < 0), pa.scalar(None, pa.string()), lsoa_s)
    return pa.table({
        "nhs_number": _nhs_strings(nhs),
        "date_of_birth": _dates(dob),
        "sex": _lookup(SEXES, sex),
        "ethnicity": _lookup(ETHNIC[:-1], np.where(eth == len(ETHNIC) - 1, -1, eth)),
        "lsoa": lsoa_s,
        "imd_decile": pa.array(imd, type=pa.int16(), mask=imd < 0),
        "date_of_death": _dates(np.maximum(death, 0), death < 0),
    }, schema=ARROW_SCHEMAS["patients"])


def _registrations_table(ctx, nhs, cur_org, cur_start, cur_end, moved, prev_org, prev_start, prev_end) -> pa.Table:
    mv = np.nonzero(moved)[0]
    n = len(nhs)
    who = np.concatenate([mv, np.arange(n)])
    org = np.concatenate([prev_org[mv], cur_org])
    s = np.concatenate([prev_start[mv], cur_start])
    e = np.concatenate([prev_end[mv], cur_end])
    order = np.lexsort((s, who))
    who, org, s, e = who[order], org[order], s[order], e[order]
    return pa.table({
        "nhs_number": _nhs_strings(nhs).take(pa.array(who)),
        "practice_code": _lookup(ctx.org_codes, org),
        "start_date": _dates(s),
        "end_date": _dates(np.maximum(e, 0), e < 0),
    }, schema=ARROW_SCHEMAS["registrations"])
