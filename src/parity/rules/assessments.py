"""Assessment frameworks (mission feature M10), as data: the 10 "parity of esteem" best-practice indicators
(rated red/amber/green) and Equality Delivery System (EDS) domain 1, outcomes 1A-1D scored 0-3 (total /12).

The content lives in ``rules/assessments.toml`` with its sources (product.md M10; the project docs say nothing
more, and give no EDS overall rating bands, so only the total is shown). No SQL and no I/O beyond the packaged
TOML; ``parity.reports.assessments`` stores assessments and checks them with ``Framework.problems``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from parity.errors import ConfigurationError, RuleError

SCALE_KINDS = ("rag", "points")
MAX_EVIDENCE = 2000


@dataclass(frozen=True)
class ScalePoint:
    """One allowed score: ``value`` is what is stored (``"green"``, ``"2"``)."""

    value: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class Item:
    """One indicator or outcome an area is scored on."""

    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class Framework:
    id: str
    name: str
    description: str
    source: str
    scale_kind: str
    totals: bool
    scale: tuple[ScalePoint, ...]
    items: tuple[Item, ...]

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(p.value for p in self.scale)

    @property
    def max_total(self) -> int | None:
        """Highest possible total (12 for EDS domain 1), or None for a framework without totals."""
        if not self.totals:
            return None
        return max(int(v) for v in self.values) * len(self.items)

    def item(self, item_id: str) -> Item | None:
        """The item ``item_id`` (case-insensitive: ``1a`` is ``1A``), or None."""
        wanted = str(item_id).strip().lower()
        return next((i for i in self.items if i.id.lower() == wanted), None)

    def label(self, value: str) -> str:
        return next((p.label for p in self.scale if p.value == value), value)

    def normalise_score(self, value: Any) -> str | None:
        """The stored form of ``value`` (``"Green"`` -> ``"green"``, ``2`` -> ``"2"``), or None if not allowed."""
        if isinstance(value, bool) or value is None:
            return None
        text = str(value).strip().lower()
        return text if text in self.values else None

    def total(self, scores: Mapping[str, str]) -> int | None:
        """Sum of the scores (frameworks with totals only)."""
        if not self.totals:
            return None
        return sum(int(scores[i.id]) for i in self.items if i.id in scores)

    def problems(self, scores: Mapping[str, Any], evidence: Mapping[str, str] | None = None
                 ) -> list[tuple[str | None, str]]:
        """Everything wrong with one assessment's scores and evidence, as (item id or None, reason).

        Every item must be scored once (so totals and RAG counts compare over time), with a value of the
        scale; evidence may only name items of the framework and is at most ``MAX_EVIDENCE`` characters.
        """
        out: list[tuple[str | None, str]] = []
        seen: set[str] = set()
        allowed = ", ".join(self.values)
        for raw, value in scores.items():
            item = self.item(raw)
            if item is None:
                out.append((None, f"unknown item {str(raw)[:40]!r} in {self.id}"))
                continue
            if item.id in seen:
                out.append((item.id, f"item {item.id} is scored twice"))
                continue
            seen.add(item.id)
            if self.normalise_score(value) is None:
                out.append((item.id, f"score for {item.id} must be one of {allowed}, not {str(value)[:20]!r}"))
        for item in self.items:
            if item.id not in seen:
                out.append((item.id, f"item {item.id} ({item.name}) has no score"))
        for raw, text in (evidence or {}).items():
            item = self.item(raw)
            if item is None:
                out.append((None, f"evidence for unknown item {str(raw)[:40]!r} in {self.id}"))
            elif len(str(text or "")) > MAX_EVIDENCE:
                out.append((item.id, f"evidence for {item.id} is longer than {MAX_EVIDENCE} characters"))
        return out


def _framework(fid: str, raw: Mapping[str, Any]) -> Framework:
    where = f"assessments.toml: framework {fid}"
    try:
        kind = raw["scale_kind"]
        if kind not in SCALE_KINDS:
            raise RuleError(f"{where}: scale_kind must be one of {SCALE_KINDS}, got {kind!r}")
        scale = tuple(ScalePoint(str(p["value"]), p["label"], p.get("description", "")) for p in raw["scale"])
        items = tuple(Item(str(i["id"]), i["name"], i.get("description", "")) for i in raw["item"])
        fw = Framework(fid, raw["name"], raw.get("description", ""), raw.get("source", ""), kind,
                       bool(raw.get("totals", False)), scale, items)
    except KeyError as exc:
        raise RuleError(f"{where}: missing {exc.args[0]!r}") from None
    if len({i.id.lower() for i in items}) != len(items):
        raise RuleError(f"{where}: item ids must be unique")
    if len(set(fw.values)) != len(scale) or not scale or not items:
        raise RuleError(f"{where}: needs items and a scale of distinct values")
    if fw.totals and not all(v.isdigit() for v in fw.values):
        raise RuleError(f"{where}: a framework with totals needs whole-number scores")
    return fw


@cache
def load_frameworks() -> dict[str, Framework]:
    """Every framework of ``assessments.toml``, by id (``poe``, ``eds``), in file order."""
    text = resources.files("parity.rules").joinpath("assessments.toml").read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"assessments.toml: {exc}") from None
    return {fid: _framework(fid, raw) for fid, raw in data.get("framework", {}).items()}


def get_framework(framework: str) -> Framework:
    """The framework ``framework`` or ``ConfigurationError`` naming the choices."""
    frameworks = load_frameworks()
    fw = frameworks.get(str(framework).strip().lower())
    if fw is None:
        raise ConfigurationError(f"unknown assessment framework {str(framework)[:40]!r}; "
                                 f"choose one of {', '.join(frameworks)}")
    return fw
