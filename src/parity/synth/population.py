"""Generate one batch of practices: patients, registrations, events and medications.

Everything is vectorised over the patients of a batch (numpy, no per-row Python). The parameters,
context and helpers live in ``model``, the clinical records in ``clinical`` and the Arrow tables in
``tables``; the model is documented in ``parity/synth/README.md``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from parity.synth.clinical import anchor_day_of_year, medications_table, record_bp, record_check, record_noise
from parity.synth.model import (
    AGE_BANDS,
    CHECKS,
    ETHNIC_P,
    ETHNIC_P_LONDON,
    LONDON,
    P_ALL_AT_REVIEW,
    P_AT_REVIEW,
    P_DECLINE_AT_REVIEW,
    P_DECLINE_OTHERWISE,
    P_EXCEPTION,
    P_EXTRA_MH,
    P_INCIDENT,
    P_LEFT,
    P_MOVED_IN,
    P_NEW,
    P_OPPORTUNISTIC,
    P_REDIAGNOSED,
    P_REMISSION,
    PERSIST,
    PRACTICE_LOGIT_SD,
    RATE_BAND_OTHER,
    RATE_BAND_SE,
    REMISSION_ATTENDANCE,
    SEX_P,
    TRUST_SHARE_BAND,
    YEAR,
    YEAR_FACTOR,
    Codes,
    Context,
    EventLog,
    Noise,
    PracticeBatch,
    Units,
    choice,
    day,
    grouped_choice,
    uniform_days,
)
from parity.synth.tables import events_table, patients_table, registrations_table

# Names the generator reads from this module (defined in ``model``).
__all__ = [
    "LONDON", "PRACTICE_LOGIT_SD", "RATE_BAND_OTHER", "RATE_BAND_SE", "TRUST_SHARE_BAND", "Codes", "Context",
    "Noise", "PracticeBatch", "Units", "day", "generate_batch",
]


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
    anchor = anchor_day_of_year(rng, n)
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
            record_check(ctx, ev, rng, check, who, when[who], rb[who], y, v)
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
        record_bp(ev, rng, c, who, w, recorder_at(who, w), sbp0, dbp0, u_mmhg)

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

    record_noise(ctx, ev, rng, pid, dob, act_start, act_end, blood, recorder_at, pb.trust_org, prac)

    events = events_table(ctx, ev, pb.nhs)
    meds = medications_table(ctx, rng, pid, pb.nhs, act_start, act_end, diag, in_remission, rem_day, dm, chd,
                        qrisk0)

    # ---- patients and registrations
    patients = patients_table(pb.nhs, dob, sex, eth, lsoa, imd, death)
    registrations = registrations_table(ctx, pb.nhs, cur_org, cur_start, cur_end, moved, prev_org, prev_start,
                                         prev_end)
    return {
        "patients": patients, "registrations": registrations, "events": events, "medications": meds,
        "_register": np.array([int(on_register.sum())]),
    }
