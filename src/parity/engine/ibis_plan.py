"""Compile a measure into *features*: the code sets the Ibis engine needs the latest date of.

Every rule of Parity rules v1 reads "the latest date on or before ``as_of`` of some set of codes",
sometimes with the value recorded on that date. A window test is then a comparison of that
latest date with the window start (the latest date in a window is the latest date overall when
that date falls inside the window, and there is none otherwise). So the engine needs, per
patient, one ``max(date)`` per distinct code set: a *feature*. Code sets are deduplicated, so
a cluster read by a check and by a criterion is scanned once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from parity.rules.model import Criterion, Measure

BITS = 62  # feature bits per BIGINT word (clear of the sign bit)

CodesFor = Callable[[Iterable[str]], Mapping[str, frozenset[int]]]


@dataclass
class FeaturePlan:
    """The code sets (features) one measure reads, and which features each rule uses.

    ``features[k]`` is the code set of feature ``k``. ``valued`` holds the features whose
    latest date is taken only over events with a value (``value_at_least``). ``med_prefixes``
    are the BNF prefixes of ``medication`` criteria, in a fixed order.
    """

    features: list[frozenset[int]] = field(default_factory=list)
    valued: set[int] = field(default_factory=set)
    med_prefixes: list[str] = field(default_factory=list)
    register_diagnosis: int = -1
    register_remission: int = -1
    done: dict[str, int] = field(default_factory=dict)
    declined: dict[str, int] = field(default_factory=dict)
    pca: int | None = None
    # (check id, criterion index) -> feature ids the criterion reads, by role
    criteria: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    # lengths (months) of every window a windowed feature is compared with
    window_months: set[int] = field(default_factory=set)
    # lengths (months) of the windows of medication criteria
    med_months: set[int] = field(default_factory=set)

    @property
    def history_features(self) -> set[int]:
        """Features read over all history (register and higher-risk criteria); every other
        feature is only ever compared with a window start (``window_months``)."""
        out = {self.register_diagnosis, self.register_remission}
        for roles in self.criteria.values():
            out |= {k for role, k in roles.items() if role != "prefix"}
        return out

    def history_masks(self) -> list[int]:
        """Per mask word, the bits of ``history_features``."""
        words = [0] * self.mask_words
        for k in self.history_features:
            w, b = self.bit(k)
            words[w] |= b
        return words

    def feature(self, codes: frozenset[int]) -> int:
        """The id of the feature for ``codes`` (created on first use)."""
        for k, existing in enumerate(self.features):
            if existing == codes and k not in self.valued:
                return k
        self.features.append(codes)
        return len(self.features) - 1

    def med(self, prefix: str, months: int) -> int:
        """The index of ``prefix`` among ``med_prefixes`` (its bit in the medication mask)."""
        if prefix not in self.med_prefixes:
            if len(self.med_prefixes) == BITS:
                raise ValueError(f"a measure may read at most {BITS} BNF prefixes")
            self.med_prefixes.append(prefix)
        self.med_months.add(months)
        return self.med_prefixes.index(prefix)

    @property
    def key(self) -> tuple:
        """Identifies the cached relevant-event table this plan reads."""
        return (tuple(self.features), tuple(sorted(self.valued)))

    def code_rows(self, features: Iterable[int] | None = None) -> tuple[list[int], list[int]]:
        """``(codes, features)`` columns of the code -> feature mapping (a code may map to several),
        for ``features`` (default: all)."""
        wanted = range(len(self.features)) if features is None else sorted(set(features))
        codes: list[int] = []
        feats: list[int] = []
        for k in wanted:
            for code in sorted(self.features[k]):
                codes.append(int(code))
                feats.append(k)
        return codes, feats

    @property
    def mask_words(self) -> int:
        """How many 64-bit words hold one bit per feature."""
        return max(1, -(-len(self.features) // BITS))

    @staticmethod
    def bit(k: int) -> tuple[int, int]:
        """``(word, mask)`` of feature ``k``'s bit."""
        return k // BITS, 1 << (k % BITS)

    def code_masks(self) -> dict[str, list[int]]:
        """One row per code: ``code``, ``m<w>`` (the bits of the features holding the code) and
        ``v<w>`` (the same for ``valued`` features, which count only events with a value)."""
        words = self.mask_words
        rows: dict[int, list[int]] = {}
        for k, codes in enumerate(self.features):
            w, b = self.bit(k)
            for code in codes:
                row = rows.setdefault(int(code), [0] * (2 * words))
                row[words * (k in self.valued) + w] |= b
        out: dict[str, list[int]] = {"code": sorted(rows)}
        for w in range(words):
            out[f"m{w}"] = [rows[c][w] for c in out["code"]]
            out[f"v{w}"] = [rows[c][words + w] for c in out["code"]]
        return out


def build_plan(measure: Measure, codes_for: CodesFor) -> FeaturePlan:
    """Resolve ``measure``'s clusters to codes and assign a feature to every code set it reads."""
    table = codes_for(sorted(measure.clusters()))

    def codes(clusters: Iterable[str]) -> frozenset[int]:
        out: set[int] = set()
        for name in clusters:
            out |= set(table.get(name, frozenset()))
        return frozenset(out)

    plan = FeaturePlan()
    remission = codes(measure.register.remission)
    # A code in both lists counts as remission (product.md "On the register").
    plan.register_diagnosis = plan.feature(codes(measure.register.diagnosis) - remission)
    plan.register_remission = plan.feature(remission)
    for check in measure.checks:
        plan.done[check.id] = plan.feature(codes(check.done))
        plan.declined[check.id] = plan.feature(codes(check.declined))
        plan.window_months.add(check.window.months)
        if check.lower_risk:
            plan.window_months.add(check.lower_risk.months)
            for i, crit in enumerate(check.lower_risk.higher_risk_if):
                plan.criteria[(check.id, i)] = _criterion_features(plan, crit, codes)
    if measure.pca is not None:
        plan.pca = plan.feature(codes(measure.pca.any_of))
        plan.window_months.add(measure.pca.window.months)
    return plan


def _criterion_features(
    plan: FeaturePlan, crit: Criterion, codes: Callable[[Iterable[str]], frozenset[int]]
) -> dict[str, int]:
    if crit.kind == "ever":
        return {"clusters": plan.feature(codes(crit.clusters))}
    if crit.kind == "unresolved":
        return {"clusters": plan.feature(codes(crit.clusters)), "resolved": plan.feature(codes(crit.resolved))}
    if crit.kind == "latest_is":
        among = codes(crit.among)
        # The latest code of ``among`` is in ``clusters`` exactly when the latest date of the codes
        # in both equals the latest date of ``among``.
        return {"among": plan.feature(among), "hit": plan.feature(codes(crit.clusters) & among)}
    if crit.kind == "medication":
        return {"prefix": plan.med(crit.bnf_prefix, crit.months)}
    if crit.kind == "value_at_least":
        # A separate feature from any plain one with the same codes: only valued events count.
        k = _valued_feature(plan, codes(crit.clusters))
        return {"clusters": k}
    raise ValueError(f"unknown criterion kind {crit.kind!r}")


def _valued_feature(plan: FeaturePlan, codes: frozenset[int]) -> int:
    for k in plan.valued:
        if plan.features[k] == codes:
            return k
    # Never share with an unvalued feature: append even when the code set already exists.
    plan.features.append(codes)
    k = len(plan.features) - 1
    plan.valued.add(k)
    return k

