"""Red-zone findings and the follow-up intervention each maps to (mission feature M6), as data.

The content lives in ``rules/interventions.toml``: a *finding* is an abnormal result (Lester tool red zone,
clinical-spec.md §4, S14; NICE CG181 QRISK >=10%, S26; AUDIT-C >=5, S27) and names its *intervention*
(stop smoking service, weight management, BP review, NHS Diabetes Prevention Programme, diabetes review,
lipid review, alcohol brief intervention). Thresholds are the trust template's (``trust-phc-v1.toml``).

No SQL and no I/O beyond the packaged TOML and codelists. ``Finding.evaluate`` decides a finding for one
patient's readings without a database; ``parity.care.followup`` applies the same criteria to many patients
at once (``Criterion.matches`` takes scalars or pandas Series).
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from parity.errors import RuleError
from parity.rules.model import months_before

FINDING_KINDS = ("value", "status", "gain")
REFERRAL_STATES = ("offered", "accepted", "declined", "completed")

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


@dataclass(frozen=True)
class Reading:
    """One coded entry of a patient's record: its date, SNOMED CT code and value (if any)."""

    date: date
    code: int
    value: float | None = None


@dataclass(frozen=True)
class Hit:
    """A finding that holds: the date of the result that triggered it and the value as text."""

    finding_id: str
    date: date
    value_text: str


@dataclass(frozen=True)
class Criterion:
    """One threshold on the values of one cluster: ``value <when> threshold`` (and ``value < below``)."""

    cluster: str
    when: str
    value: float
    label: str
    unit: str = ""
    decimals: int = 1
    below: float | None = None
    value_by_ethnicity: tuple[tuple[str, float], ...] = ()
    category_values: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def codes(self) -> frozenset[int]:
        """SNOMED CT ids of the cluster (empty when no codelist ships: the criterion never holds)."""
        if not self.cluster:
            return frozenset()
        from parity.codes import load_codelist

        return load_codelist(self.cluster).ids()

    def category_codes(self) -> dict[int, float]:
        """Category codes recorded without a value (e.g. "BMI 30+"), each read as the lowest value of its
        category (``category_values``: cluster -> value). When a code is in several clusters the lowest wins."""
        if not self.category_values:
            return {}
        from parity.codes import load_codelist

        out: dict[int, float] = {}
        for cluster, value in self.category_values:
            for code in load_codelist(cluster).ids():
                out[code] = min(value, out.get(code, value))
        return out

    def reading_value(self, code: int, value: float | None) -> float | None:
        """The value this criterion reads from one entry: its recorded value for a code of the cluster, the
        category's value for a category code, otherwise None."""
        if code in self.codes() and value is not None and value == value:
            return float(value)
        return self.category_codes().get(code)

    def threshold(self, ethnicity: str | None = None) -> float:
        """The threshold for a patient of NHS ethnic category ``ethnicity`` (a letter, or None)."""
        if ethnicity and isinstance(ethnicity, str):
            for category, value in self.value_by_ethnicity:
                if ethnicity.strip().upper() == category:
                    return value
        return self.value

    def matches(self, value: Any, ethnicity: Any = None) -> Any:
        """Does ``value`` meet the criterion? Scalars give a bool; a pandas Series of values (with an
        optional Series of ethnicity letters) gives a boolean Series, by the very same rule."""
        if hasattr(value, "index"):  # pandas Series: one threshold per row
            import pandas as pd

            if ethnicity is None:
                limit: Any = self.value
            else:
                limit = pd.Series([self.threshold(e) for e in ethnicity], index=value.index, dtype="float64")
            values = value.astype("float64")
            out = _COMPARE[self.when](values, limit) & values.notna()
            if self.below is not None:
                out = out & (values < self.below)
            return out.fillna(False).astype(bool)
        if value is None or value != value:  # None or NaN
            return False
        if not _COMPARE[self.when](float(value), self.threshold(ethnicity)):
            return False
        return self.below is None or float(value) < self.below

    def describe(self, value: float, *, category: bool = False) -> str:
        """The value as a clinician reads it, e.g. ``"HbA1c 44 mmol/mol"``; a category code reads
        ``"BMI 30+ (category code)"``."""
        if category:
            return f"{self.label} {value:g}+ (category code)"
        text = f"{self.label} {value:.{self.decimals}f}"
        return f"{text} {self.unit}" if self.unit else text


@dataclass(frozen=True)
class Finding:
    """A red-zone finding (see ``interventions.toml`` for the kinds) and the intervention it maps to."""

    id: str
    label: str
    kind: str
    intervention: str
    source: tuple[str, ...]
    criteria: tuple[Criterion, ...] = ()
    clusters: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    months: int = 3
    superseded_by: str | None = None
    note: str = ""

    def codes(self) -> frozenset[int]:
        """Every SNOMED CT id this finding reads."""
        from parity.codes import load_codelist

        out: set[int] = set()
        for c in self.criteria:
            out |= c.codes() | set(c.category_codes())
        for name in self.clusters:
            out |= load_codelist(name).ids()
        return frozenset(out)

    def match_codes(self) -> frozenset[int]:
        """For a ``status`` finding: the codes that make the latest status a finding."""
        from parity.codes import load_codelist

        out: set[int] = set()
        for name in self.match:
            out |= load_codelist(name).ids()
        return frozenset(out)

    def evaluate(self, readings: Iterable[Reading], ethnicity: str | None = None, *,
                 start: date | None = None, end: date | None = None) -> Hit | None:
        """The finding for one patient, or None. Only results dated ``start``..``end`` trigger it (the
        baseline weight of a ``gain`` may be older). On one day the largest value is the latest result."""
        rows = [r for r in readings if end is None or r.date <= end]

        def in_window(r: Reading) -> bool:
            return start is None or r.date >= start

        if self.kind == "status":
            codes, current = self.codes(), self.match_codes()
            status = [r for r in rows if r.code in codes and in_window(r)]
            if not status:
                return None
            latest = max(status, key=lambda r: (r.date, r.code in current))
            return Hit(self.id, latest.date, self.label) if latest.code in current else None
        if self.kind == "gain":
            crit = self.criteria[0]
            codes = crit.codes()
            valued = [r for r in rows if r.code in codes and r.value is not None]
            recent = [r for r in valued if in_window(r)]
            if not recent:
                return None
            latest = max(recent, key=lambda r: (r.date, r.value))
            since = months_before(latest.date, self.months)
            before = [r for r in valued if since <= r.date < latest.date]
            if not before:
                return None
            base = min(before, key=lambda r: (r.date, r.value))
            gain = round(float(latest.value) - float(base.value), 6)  # type: ignore[arg-type]
            if crit.matches(gain, ethnicity):
                return Hit(self.id, latest.date, f"{crit.describe(gain)} in {self.months} months")
            return None
        hits: list[tuple[date, str]] = []
        for crit in self.criteria:
            categories = crit.category_codes()
            valued = [(r.date, v, r.code in categories and r.code not in crit.codes()) for r in rows
                      if in_window(r) and (v := crit.reading_value(r.code, r.value)) is not None]
            if not valued:
                continue
            when, value, category = max(valued, key=lambda x: (x[0], x[1]))
            if crit.matches(value, ethnicity):
                hits.append((when, crit.describe(value, category=category)))
        if not hits:
            return None
        hits.sort()
        # The finding dates from its earliest triggering result (Parity choice: follow-up counts from then).
        return Hit(self.id, hits[0][0], "; ".join(text for _, text in hits))


@dataclass(frozen=True)
class CodedState:
    """A SNOMED CT code that, found in the record, marks an intervention ``state``."""

    code: int
    cluster: str
    state: str


@dataclass(frozen=True)
class Intervention:
    """A follow-up intervention: what it is, in plain English, and the codes that record it."""

    id: str
    label: str
    description: str
    coded: tuple[CodedState, ...] = ()

    def coded_states(self) -> dict[int, str]:
        """code -> state (offered, accepted, declined, completed)."""
        return {c.code: c.state for c in self.coded}


@dataclass(frozen=True)
class InterventionCatalogue:
    """Every finding (in file order) and every intervention, by id."""

    findings: tuple[Finding, ...]
    interventions: Mapping[str, Intervention]

    def finding(self, finding_id: str) -> Finding:
        for f in self.findings:
            if f.id == finding_id:
                return f
        raise KeyError(finding_id)

    def intervention(self, intervention_id: str) -> Intervention:
        return self.interventions[intervention_id]

    def evaluate(self, readings: Iterable[Reading], ethnicity: str | None = None, *,
                 start: date | None = None, end: date | None = None) -> list[Hit]:
        """Every finding for one patient (superseded findings dropped), in file order."""
        rows = list(readings)
        hits = {f.id: h for f in self.findings if (h := f.evaluate(rows, ethnicity, start=start, end=end))}
        return [h for fid, h in hits.items() if self.finding(fid).superseded_by not in hits]


def _criterion(raw: dict[str, Any], where: str) -> Criterion:
    when = raw.get("when")
    if when not in _COMPARE:
        raise RuleError(f"{where}: unknown comparison {when!r}")
    cluster = str(raw.get("cluster", ""))
    if cluster:
        from parity.codes import load_codelist

        load_codelist(cluster)  # unknown clusters fail at load, not at first use
    return Criterion(
        cluster=cluster, when=when, value=float(raw["value"]), label=str(raw["label"]),
        unit=str(raw.get("unit", "")), decimals=int(raw.get("decimals", 1)),
        below=float(raw["below"]) if "below" in raw else None,
        value_by_ethnicity=tuple((str(k).upper(), float(v))
                                 for k, v in sorted(raw.get("value_by_ethnicity", {}).items())),
        category_values=tuple((str(k), float(v)) for k, v in sorted(raw.get("category_values", {}).items())),
        note=str(raw.get("note", "")),
    )


def _coded(raw: dict[str, Any], where: str) -> CodedState:
    from parity.codes import load_codelist

    code, cluster, state = int(raw["code"]), str(raw["cluster"]), str(raw["state"])
    if state not in REFERRAL_STATES:
        raise RuleError(f"{where}: state must be one of {REFERRAL_STATES}, got {state!r}")
    if code not in load_codelist(cluster):
        raise RuleError(f"{where}: code {code} is not in the shipped codelist {cluster}")
    return CodedState(code, cluster, state)


def parse_interventions(raw: dict[str, Any], where: str = "interventions") -> InterventionCatalogue:
    """Build the catalogue from parsed TOML, refusing anything malformed with ``RuleError``."""
    try:
        interventions: dict[str, Intervention] = {}
        for i in raw.get("intervention", []):
            iid = str(i["id"])
            if iid in interventions:
                raise RuleError(f"{where}: intervention {iid!r} is defined twice")
            interventions[iid] = Intervention(
                id=iid, label=str(i["label"]), description=str(i["description"]),
                coded=tuple(_coded(c, f"{where}.{iid}.coded") for c in i.get("coded", [])),
            )
        findings: list[Finding] = []
        for f in raw.get("finding", []):
            fid = str(f["id"])
            here = f"{where}.{fid}"
            kind = f.get("kind")
            if kind not in FINDING_KINDS:
                raise RuleError(f"{here}: kind must be one of {FINDING_KINDS}, got {kind!r}")
            if f["intervention"] not in interventions:
                raise RuleError(f"{here}: unknown intervention {f['intervention']!r}")
            criteria = tuple(_criterion(c, f"{here}.criteria") for c in f.get("criteria", []))
            if kind in ("value", "gain") and not criteria:
                raise RuleError(f"{here}: a {kind} finding needs criteria")
            if kind == "status" and not (f.get("clusters") and f.get("match")):
                raise RuleError(f"{here}: a status finding needs clusters and match")
            if any(fd.id == fid for fd in findings):
                raise RuleError(f"{where}: finding {fid!r} is defined twice")
            findings.append(Finding(
                id=fid, label=str(f["label"]), kind=kind, intervention=str(f["intervention"]),
                source=tuple(str(s) for s in f.get("source", [])), criteria=criteria,
                clusters=tuple(str(c) for c in f.get("clusters", [])), match=tuple(str(c) for c in f.get("match", [])),
                months=int(f.get("months", 3)), superseded_by=f.get("superseded_by"), note=str(f.get("note", "")),
            ))
        ids = {fd.id for fd in findings}
        for fd in findings:
            if fd.superseded_by is not None and fd.superseded_by not in ids:
                raise RuleError(f"{where}.{fd.id}: superseded_by names unknown finding {fd.superseded_by!r}")
        return InterventionCatalogue(tuple(findings), interventions)
    except KeyError as exc:
        raise RuleError(f"{where}: missing {exc.args[0]!r}") from None


@cache
def load_interventions() -> InterventionCatalogue:
    """The packaged catalogue of red-zone findings and interventions (``rules/interventions.toml``)."""
    text = resources.files("parity.rules").joinpath("interventions.toml").read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"interventions.toml: {exc}") from None
    return parse_interventions(raw, "interventions.toml")
