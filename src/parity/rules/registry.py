"""Load measure definitions from the TOML files in ``rules/measures/``.

Measures are data (product.md M1): a local bundle is added by dropping a TOML file beside
these, or by passing a path to ``load_measure``.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from parity.errors import RuleError
from parity.rules.model import (
    CORE_CHECKS,
    Check,
    Criterion,
    LowerRiskWindow,
    Measure,
    PersonalisedCareAdjustment,
    Register,
    Window,
)

CRITERION_KINDS = {"ever", "unresolved", "latest_is", "medication", "value_at_least"}


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _criterion(raw: dict[str, Any], where: str) -> Criterion:
    kind = raw.get("kind")
    if kind not in CRITERION_KINDS:
        raise RuleError(f"{where}: unknown criterion kind {kind!r} (expected one of {sorted(CRITERION_KINDS)})")
    by_eth = raw.get("threshold_by_ethnicity", {})
    return Criterion(
        kind=kind,
        clusters=_tuple(raw.get("clusters")),
        resolved=_tuple(raw.get("resolved")),
        among=_tuple(raw.get("among")),
        bnf_prefix=str(raw.get("bnf_prefix", "")),
        months=int(raw.get("months", 0)),
        threshold=float(raw.get("threshold", 0.0)),
        threshold_by_ethnicity=tuple((str(k), float(v)) for k, v in sorted(by_eth.items())),
        note=str(raw.get("note", "")),
    )


def _check(raw: dict[str, Any], where: str) -> Check:
    try:
        lower = raw.get("lower_risk")
        lower_risk = None
        if lower:
            lower_risk = LowerRiskWindow(
                months=int(lower["months"]),
                higher_risk_if=tuple(
                    _criterion(c, f"{where}.lower_risk[{i}]") for i, c in enumerate(lower["higher_risk_if"])
                ),
            )
        return Check(
            id=raw["id"],
            label=raw["label"],
            done=_tuple(raw["done"]),
            declined=_tuple(raw.get("declined")),
            window=Window(int(raw.get("months", 12))),
            lower_risk=lower_risk,
            note=str(raw.get("note", "")),
        )
    except KeyError as exc:
        raise RuleError(f"{where}: missing key {exc.args[0]!r}") from None


def parse_measure(data: dict[str, Any], origin: str) -> Measure:
    """Build a ``Measure`` from parsed TOML, checking its shape."""
    try:
        reg = data["register"]
        checks = tuple(_check(c, f"{origin} checks[{i}]") for i, c in enumerate(data["checks"]))
        pca_raw = data.get("pca")
        pca = None
        if pca_raw is not None:
            pca = PersonalisedCareAdjustment(
                any_of=_tuple(pca_raw.get("any_of")), window=Window(int(pca_raw.get("months", 12)))
            )
        measure = Measure(
            id=data["id"],
            name=data["name"],
            description=data.get("description", ""),
            source=data.get("source", ""),
            register=Register(diagnosis=_tuple(reg["diagnosis"]), remission=_tuple(reg["remission"])),
            checks=checks,
            pca=pca,
            choices=_tuple(data.get("choices")),
        )
    except KeyError as exc:
        raise RuleError(f"{origin}: missing key {exc.args[0]!r}") from None
    ids = [c.id for c in measure.checks]
    if len(set(ids)) != len(ids):
        raise RuleError(f"{origin}: duplicate check ids")
    missing = [c for c in CORE_CHECKS if c not in ids]
    if missing:
        raise RuleError(f"{origin}: every measure includes the six core checks; missing {missing}")
    return measure


def _builtin_files() -> dict[str, Any]:
    folder = resources.files("parity.rules") / "measures"
    return {p.name[:-5]: p for p in folder.iterdir() if p.name.endswith(".toml")}


def list_measures() -> list[str]:
    """Ids of the built-in measures."""
    return sorted(_builtin_files())


@cache
def load_measure(name_or_path: str) -> Measure:
    """A built-in measure by id (``phsmi``, ``qof-mh021``, ``extended-9``) or a TOML file path."""
    files = _builtin_files()
    if name_or_path in files:
        text = files[name_or_path].read_text(encoding="utf-8")
        origin = f"measure {name_or_path}"
    elif name_or_path.endswith(".toml") and Path(name_or_path).is_file():
        text = Path(name_or_path).read_text(encoding="utf-8")
        origin = name_or_path
    else:
        raise RuleError(f"unknown measure {name_or_path!r}; built-in measures: {', '.join(sorted(files))}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML ({exc})") from None
    return parse_measure(data, origin)
