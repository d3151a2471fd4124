"""The synthetic-population model: parameters, code pickers, batch context and sampling helpers.

Dates are whole days since 1970-01-01 (int64) until the tables are built. The model, its parameters
and where they come from are documented in ``parity/synth/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from parity.synth import reference as ref

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

