"""Clinical records of a batch: check elements and their values, everyday codes, medications."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from parity.synth.model import (
    NOISE_PER_YEAR,
    P_ANTIPSYCHOTIC,
    P_NULL_RECORDER,
    P_SWITCH,
    P_TRUST_NOISE,
    YEAR,
    Codes,
    Context,
    EventLog,
    Noise,
    choice,
    grouped_choice,
    uniform_days,
)
from parity.synth.schema import ARROW_SCHEMAS
from parity.synth.tables import by_patient_and_day, dates, nhs_strings


def anchor_day_of_year(rng: np.random.Generator, n: int) -> np.ndarray:
    """Day of the year of each patient's annual review: more in January-March (QOF year end)."""
    month_w = np.array([1.2, 1.5, 1.8, 0.8, 0.8, 0.8, 0.7, 0.6, 0.8, 0.9, 1.0, 0.9])
    month_start = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
    month_len = np.diff(np.append(month_start, 365))
    m = choice(rng, month_w, n)
    return month_start[m] + np.floor(rng.random(n) * month_len[m]).astype(np.int64)


def record_bp(ev: EventLog, rng: np.random.Generator, c: Codes, who: np.ndarray, when: np.ndarray, rb: np.ndarray,
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


def record_check(ctx: Context, ev: EventLog, rng: np.random.Generator, check: str, who: np.ndarray,
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
        record_bp(ev, rng, c, who, when, rb, v["sbp0"], v["dbp0"], units.index("mmHg"))
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


def record_noise(ctx: Context, ev: EventLog, rng: np.random.Generator, pid: np.ndarray, dob: np.ndarray,
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


def medications_table(ctx: Context, rng: np.random.Generator, pid, nhs, act_start, act_end, diag, in_remission,
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
    order = by_patient_and_day(who, when)
    who, when, prod = who[order], when[order], prod[order]
    bnf = pa.array(d.bnf, type=pa.string())
    return pa.table({
        "nhs_number": nhs_strings(nhs).take(pa.array(who)),
        "date": dates(when),
        "dmd_code": pa.array(d.dmd[prod], type=pa.int64()),
        "bnf_code": bnf.take(pa.array(prod)),
    }, schema=ARROW_SCHEMAS["medications"])

