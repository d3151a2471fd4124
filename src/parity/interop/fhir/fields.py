"""Reading fields of a received FHIR Bundle: plain JSON accessors (lists, objects, dates, ODS codes, check
identifiers), the SNOMED CT codes Parity can file, and FHIR model validation errors as ``Problem``s. No rule
about what a Bundle must hold lives here: that is ``parity.interop.fhir.read``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any

import pydantic

from parity.errors import Problem
from parity.interop.fhir.codes import MAX_PROBLEMS, ODS_SYSTEM
from parity.interop.record import ODS_CODE


def _problem(path: str | None, reason: str) -> Problem:
    return Problem("bundle", None, path, reason)


_FIXED_REASONS = {
    "missing": "is required",
    "model_field_validation.missing": "is required",
    "extra_forbidden": "is not a FHIR element here",
    "fhir-validation-wrong-resource-type": "is not the resource type expected here",
    "base64_decode": "is not valid base64",
}


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = "resourceType" if part == "resource_type" else str(part)
            path += f".{name}" if path else name
    return path


def _pydantic_reason(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    msg = " ".join(str(err.get("msg", "")).split()).removeprefix("Value error, ")
    inp = err.get("input")
    quotes_input = isinstance(inp, str | int | float) and str(inp) != "" and str(inp) in msg
    # A message may quote the input for some error types; use it only when it has no digits (an NHS
    # number, date or value) and does not contain the input, else a fixed wording naming the type.
    if msg and not quotes_input and not re.search(r"\d", msg):
        return msg
    return f"is not valid FHIR ({kind})"


def pydantic_problems(exc: pydantic.ValidationError) -> list[Problem]:
    """Pydantic validation errors as problems naming the FHIR path, never the value."""
    return [_problem(_loc_path(tuple(e.get("loc", ()))) or None, _pydantic_reason(e))
            for e in exc.errors()[:MAX_PROBLEMS]]


# -- the project's rules, and reading the items ----------------------------------------------------

def _obj(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _full_date(x: Any) -> date | None:
    """The date of a FHIR date/dateTime/instant with at least day precision, else None."""
    if not isinstance(x, str) or len(x) < 10:
        return None
    try:
        return date.fromisoformat(x[:10])
    except ValueError:
        return None


def _is_urn_uuid(x: Any) -> bool:
    if not isinstance(x, str) or not x.startswith("urn:uuid:"):
        return False
    try:
        uuid.UUID(x[9:])
    except ValueError:
        return False
    return True


def _ods_of_identifiers(identifiers: Any) -> str | None:
    for ident in _list(identifiers) if isinstance(identifiers, list) else [identifiers]:
        ident = _obj(ident)
        value = ident.get("value")
        if ident.get("system") == ODS_SYSTEM and isinstance(value, str) and ODS_CODE.match(value.upper()):
            return value.upper()
    return None


def _ods(org: dict[str, Any]) -> str | None:
    return _ods_of_identifiers(org.get("identifier"))


@cache
def known_snomed_codes() -> frozenset[int]:
    """The SNOMED CT concepts Parity knows: every shipped codelist (``parity.codes``) and every code
    of the check template. A received result with several SNOMED CT codings files the one from here."""
    from parity.codes import list_clusters, load_codelist
    from parity.rules.template import load_template

    known: set[int] = set(load_template().all_codes())
    for cluster in list_clusters():
        known |= load_codelist(cluster).ids()
    return frozenset(known)


#: An item read from an Observation: (SNOMED CT code, display, value, display unit, UCUM code).
_Item = tuple[int, str, float | None, str, str]


def _check_id_from(identifier: dict[str, Any]) -> str | None:
    """The check id a Bundle identifier gives: the uuid of a ``urn:uuid`` value (Parity's own
    Bundles), else a uuid5 of ``system|value`` (any other sender's identifier), else None."""
    value = identifier.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    if _is_urn_uuid(value):
        return value[9:].lower()
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier.get('system') or ''}|{value.strip()}"))
