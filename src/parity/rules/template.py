"""The trust physical health check template, as data (``rules/templates/*.toml``).

A template is a list of *sections* (one per check: the six core checks, then the extended elements),
each with *fields*: a measured quantity (value, unit, plausible range) or a coded choice. Every field
names the SNOMED CT concept filed into the GP record and, for quantities, its UCUM unit. *Findings*
say when a value is abnormal and what follow-up the letter recommends (Lester tool / NICE thresholds,
clinical-spec.md §4). No SQL and no I/O beyond reading the packaged TOML.
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from parity.errors import RuleError

DEFAULT_TEMPLATE = "trust-phc-v1"
FIELD_KINDS = ("quantity", "choice")
SECTION_STATUSES = ("done", "declined", "unable", "not_done")

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}


@dataclass(frozen=True)
class Choice:
    """One answer of a coded field: the SNOMED CT concept filed, and the words shown."""

    snomed: int
    label: str


@dataclass(frozen=True)
class Finding:
    """An abnormal result: ``when`` compares the value (``>``, ``>=``, ``<``, ``<=``) with ``value``
    (or its ethnicity-specific threshold) and, when ``below`` is set, requires value < ``below``;
    ``is``/``in`` match a coded answer. ``finding`` and ``action`` are the letter's words."""

    when: str
    finding: str
    action: str
    value: float | None = None
    below: float | None = None
    value_by_ethnicity: tuple[tuple[str, float], ...] = ()
    codes: tuple[int, ...] = ()

    def threshold(self, ethnicity: str | None) -> float | None:
        """The threshold for a patient of NHS ethnic category ``ethnicity`` (letter), if any applies."""
        for category, value in self.value_by_ethnicity:
            if ethnicity and ethnicity.upper() == category:
                return value
        return self.value

    def matches(self, value: float | None, code: int | None, ethnicity: str | None = None) -> bool:
        """Does a result (``value`` for quantities, ``code`` for choices) meet this finding?"""
        if self.when in ("is", "in"):
            return code is not None and code in self.codes
        limit = self.threshold(ethnicity)
        if value is None or limit is None:
            return False
        if not _COMPARE[self.when](value, limit):
            return False
        return self.below is None or value < self.below


@dataclass(frozen=True)
class Field:
    """One recorded item: a quantity (``snomed``, ``unit``/``ucum``, ``low``..``high``) or a choice."""

    id: str
    label: str
    kind: str
    section_id: str
    snomed: int | None = None
    loinc: str | None = None
    unit: str = ""
    ucum: str = ""
    decimals: int = 0
    integer: bool = False
    low: float | None = None
    high: float | None = None
    counts: bool = False
    derived: str | None = None
    component_of: str | None = None
    profile: str | None = None
    category: str | None = None
    choices: tuple[Choice, ...] = ()
    findings: tuple[Finding, ...] = ()

    def choice(self, snomed: int) -> Choice | None:
        """The choice with this code, or None."""
        return next((c for c in self.choices if c.snomed == snomed), None)

    def format_value(self, value: float) -> str:
        """The value as a clinician reads it: the field's decimals, then its unit."""
        text = f"{value:.{self.decimals}f}"
        return f"{text} {self.unit}".strip() if self.unit not in ("score",) else text

    @property
    def codes(self) -> tuple[int, ...]:
        """Every SNOMED CT concept this field can file."""
        if self.kind == "choice":
            return tuple(c.snomed for c in self.choices)
        return (self.snomed,) if self.snomed is not None else ()


@dataclass(frozen=True)
class Section:
    """One check of the template (``id`` matches the measure's check id where one exists)."""

    id: str
    label: str
    core: bool
    fields: tuple[Field, ...]
    declined_code: int | None = None
    panel_snomed: int | None = None
    panel_loinc: str | None = None
    profile: str | None = None

    def field(self, field_id: str) -> Field:
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)


@dataclass(frozen=True)
class CheckTemplate:
    """A versioned template: its sections in the order the form and the letter show them."""

    id: str
    name: str
    version: str
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, section_id: str) -> Section:
        for s in self.sections:
            if s.id == section_id:
                return s
        raise KeyError(section_id)

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    def field(self, field_id: str) -> Field:
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)

    def all_codes(self) -> dict[int, tuple[str, str | None]]:
        """Every code the template can file -> (section id, field id or None for a declined code)."""
        out: dict[int, tuple[str, str | None]] = {}
        for s in self.sections:
            for f in s.fields:
                for code in f.codes:
                    out[code] = (s.id, f.id)
            if s.declined_code is not None:
                out[s.declined_code] = (s.id, None)
        return out


def _finding(raw: dict[str, Any], where: str) -> Finding:
    when = raw.get("when")
    if when not in (*_COMPARE, "is", "in"):
        raise RuleError(f"{where}: unknown finding comparison {when!r}")
    codes = raw.get("codes") or ([raw["code"]] if "code" in raw else [])
    return Finding(
        when=when,
        finding=str(raw["finding"]),
        action=str(raw["action"]),
        value=float(raw["value"]) if "value" in raw else None,
        below=float(raw["below"]) if "below" in raw else None,
        value_by_ethnicity=tuple((str(k), float(v)) for k, v in sorted(raw.get("value_by_ethnicity", {}).items())),
        codes=tuple(int(c) for c in codes),
    )


def _field(raw: dict[str, Any], section_id: str, where: str) -> Field:
    kind = raw.get("kind")
    if kind not in FIELD_KINDS:
        raise RuleError(f"{where}: field kind must be one of {FIELD_KINDS}, got {kind!r}")
    fid = str(raw["id"])
    here = f"{where}.{fid}"
    choices = tuple(Choice(int(c["snomed"]), str(c["label"])) for c in raw.get("choices", []))
    if kind == "quantity" and (raw.get("snomed") is None or not raw.get("ucum")):
        raise RuleError(f"{here}: a quantity needs a SNOMED CT code and a UCUM unit")
    if kind == "choice" and not choices:
        raise RuleError(f"{here}: a choice field needs choices")
    return Field(
        id=fid, label=str(raw["label"]), kind=kind, section_id=section_id,
        snomed=int(raw["snomed"]) if raw.get("snomed") is not None else None,
        loinc=raw.get("loinc"), unit=str(raw.get("unit", "")), ucum=str(raw.get("ucum", "")),
        decimals=int(raw.get("decimals", 0)), integer=bool(raw.get("integer", False)),
        low=float(raw["low"]) if "low" in raw else None, high=float(raw["high"]) if "high" in raw else None,
        counts=bool(raw.get("counts", False)), derived=raw.get("derived"), component_of=raw.get("component_of"),
        profile=raw.get("profile"), category=raw.get("category"), choices=choices,
        findings=tuple(_finding(f, f"{here}.findings") for f in raw.get("findings", [])),
    )


def parse_template(raw: dict[str, Any], where: str = "template") -> CheckTemplate:
    """Build a ``CheckTemplate`` from parsed TOML, refusing anything malformed with ``RuleError``."""
    try:
        sections = []
        seen: set[str] = set()
        for s in raw["sections"]:
            sid = str(s["id"])
            fields = tuple(_field(f, sid, f"{where}.{sid}") for f in s.get("fields", []))
            for f in fields:
                if f.id in seen:
                    raise RuleError(f"{where}: field id {f.id!r} is used twice")
                seen.add(f.id)
            sections.append(Section(
                id=sid, label=str(s["label"]), core=bool(s.get("core", False)), fields=fields,
                declined_code=int(s["declined_code"]) if s.get("declined_code") is not None else None,
                panel_snomed=int(s["panel_snomed"]) if s.get("panel_snomed") is not None else None,
                panel_loinc=s.get("panel_loinc"), profile=s.get("profile"),
            ))
        return CheckTemplate(id=str(raw["id"]), name=str(raw["name"]), version=str(raw.get("version", "1")),
                             sections=tuple(sections))
    except KeyError as exc:
        raise RuleError(f"{where}: missing {exc.args[0]!r}") from None


@cache
def load_template(name: str = DEFAULT_TEMPLATE) -> CheckTemplate:
    """The packaged template ``name`` (``trust-phc-v1``) or a TOML file path."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        ref = resources.files("parity.rules").joinpath("templates", f"{name}.toml")
        if not ref.is_file():
            raise RuleError(f"unknown check template {name!r}")
        text = ref.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"check template {name}: {exc}") from None
    return parse_template(raw, name)
