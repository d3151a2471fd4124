"""Parity rules v1 as Ibis column expressions over one row per patient and reporting date (the latest
date of each feature, the window starts of the reporting-date calendar): register, windows, the
lower-risk lipid window, the personalised care adjustment and each check's status
(shared/docs/product.md "Counting rules"). Used by ``IbisEngine._status``."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from parity.engine.ibis_exprs import flag
from parity.engine.ibis_plan import FeaturePlan
from parity.rules.model import CORE_CHECKS, Criterion, Measure


def status_columns(t: ir.Table, measure: Measure, plan: FeaturePlan, values: bool) -> ir.Table:
    """The rules as column expressions, in layers (each layer names what the next reuses)."""
    checks = list(enumerate(measure.checks))
    core = [i for i, c in checks if c.id in CORE_CHECKS]

    # Layer 1: each check's window start (the lower-risk window depends on the patient).
    starts: dict[str, Any] = {}
    for i, check in checks:
        start = t[f"_s{check.window.months}"]
        if check.lower_risk is not None:
            lower = t[f"_s{check.lower_risk.months}"]
            crits = [
                _criterion(t, crit, plan.criteria[(check.id, j)])
                for j, crit in enumerate(check.lower_risk.higher_risk_if)
            ]
            start = ibis.ifelse(ibis.or_(*crits), start, lower) if crits else lower
        starts[f"_start{i}"] = start
    t = t.mutate(**starts)

    # Layer 2: done / declined per check, the register, the PCA exception code.
    def since(k: int, start: Any) -> ir.BooleanValue:
        return flag(t[f"_d{k}"].notnull() & (t[f"_d{k}"] >= start))

    flags: dict[str, Any] = {}
    for i, check in checks:
        flags[f"_done{i}"] = since(plan.done[check.id], t[f"_start{i}"])
        # A decline counts only inside the check's own 12 months, never the longer lower-risk
        # lipid window (product.md "Declined / unsuitable"; issue 11: an older decline must not
        # remove a patient through the personalised care adjustment).
        flags[f"_decl{i}"] = since(plan.declined[check.id], t[f"_s{check.window.months}"])
    d_diag, d_rem = t[f"_d{plan.register_diagnosis}"], t[f"_d{plan.register_remission}"]
    flags["_onreg"] = flag(d_diag.notnull() & (d_rem.isnull() | (d_diag >= d_rem)))
    if measure.pca is not None and plan.pca is not None:
        flags["_pcacode"] = since(plan.pca, t[f"_s{measure.pca.window.months}"])
    t = t.mutate(**flags)

    # Layer 3: the denominator.
    all_core = ibis.and_(*[t[f"_done{i}"] for i in core])
    if measure.pca is not None:
        # Excluded: not all six, and an exception code or a decline for every one not done.
        every_missing_declined = ibis.and_(*[t[f"_done{i}"] | t[f"_decl{i}"] for i in core])
        excluded = t._onreg & ~all_core & (t._pcacode | every_missing_declined)
        in_den = t._onreg & ~excluded
    else:
        in_den = t._onreg
    t = t.mutate(_inden=in_den, _allcore=all_core, _all=ibis.and_(*[t[f"_done{i}"] for i, _c in checks]))

    # Layer 4: the contract's columns.
    cols: dict[str, Any] = {
        "as_of": t.as_of,
        "nhs_number": t.nhs_number,
        "practice_code": t.practice_code,
        "on_register": t._onreg,
        "in_denominator": t._inden,
    }
    for i, check in checks:
        done = t[f"_done{i}"]
        k = plan.done[check.id]
        cols[check.id] = done
        cols[f"{check.id}_status"] = ibis.cases(
            (done, "done"), (t[f"_decl{i}"], "declined"), else_="missing"
        )
        cols[f"{check.id}_date"] = ibis.ifelse(done, t[f"_d{k}"], ibis.null("date"))
        if values:
            cols[f"{check.id}_value"] = ibis.ifelse(done, t[f"_v{k}"], ibis.null("float64"))
    cols["checks_done"] = sum((t[f"_done{i}"].cast("int32") for i in core), ibis.literal(0, "int32"))
    cols["all_six"] = t._inden & t._allcore
    cols["all_checks"] = t._inden & t._all
    return t.select(**cols)


def _criterion(t: ir.Table, crit: Criterion, feats: dict[str, int]) -> ir.BooleanValue:
    """Whether one higher-risk criterion holds (kinds: ``parity.rules.model.Criterion``)."""

    def d(role: str) -> ir.DateColumn:
        return t[f"_d{feats[role]}"]

    if crit.kind == "ever":
        return flag(d("clusters").notnull())
    if crit.kind == "unresolved":
        return flag(d("clusters").notnull() & (d("resolved").isnull() | (d("clusters") >= d("resolved"))))
    if crit.kind == "latest_is":
        return flag(d("hit").notnull() & (d("hit") == d("among")))
    if crit.kind == "medication":
        last = t[f"_m{feats['prefix']}"]
        return flag(last.notnull() & (last >= t[f"_s{crit.months}"]))
    if crit.kind == "value_at_least":
        value = t[f"_v{feats['clusters']}"]
        threshold: Any = ibis.literal(crit.threshold, type="float64")
        if crit.threshold_by_ethnicity:
            by_letter = [
                (t.ethnicity == letter, ibis.literal(v, type="float64")) for letter, v in crit.threshold_by_ethnicity
            ]
            threshold = ibis.cases(*by_letter, else_=threshold)
        return flag(value.notnull() & (value >= threshold))
    raise ValueError(f"unknown criterion kind {crit.kind!r}")


def bnf_starts(column: Any, prefix: str) -> Any:
    # An empty prefix matches every prescription, including one without a BNF code (as the
    # reference engine reads ``(bnf_code or "").startswith("")``).
    if not prefix:
        return ibis.literal(True)
    return flag(column.startswith(prefix))
