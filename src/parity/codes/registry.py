"""Load codelists from the package data in ``codes/data/``.

``clusters.toml`` is the manifest: one table per cluster naming its CSV and provenance. Files are
read with ``importlib.resources`` on first use and cached; importing this module reads nothing.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from parity.codes.model import KINDS, Code, Codelist
from parity.errors import RuleError

__all__ = ["UnknownClusterError", "codes_for", "list_clusters", "load_codelist", "term_for"]


class UnknownClusterError(RuleError, LookupError):
    """A cluster name with no shipped codelist (also a ``LookupError`` for callers that probe)."""


_DATA = "data"
_MANIFEST = "clusters.toml"
_REQUIRED = ("cluster", "description", "refset_id", "version", "source", "kind", "file")


def _data_file(name: str) -> Any:
    return resources.files("parity.codes").joinpath(_DATA, name)


@cache
def _manifest() -> dict[str, dict[str, Any]]:
    """Manifest entries by cluster name, in file order."""
    try:
        data = tomllib.loads(_data_file(_MANIFEST).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"codelist manifest {_MANIFEST}: not valid TOML ({exc})") from None
    entries: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(data.get("cluster", [])):
        where = f"codelist manifest {_MANIFEST} cluster[{i}]"
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise RuleError(f"{where}: missing key(s) {missing}")
        name = raw["cluster"]
        if name in entries:
            raise RuleError(f"{where}: duplicate cluster {name!r}")
        if raw["kind"] not in KINDS:
            raise RuleError(f"{where}: kind {raw['kind']!r} is not one of {sorted(KINDS)}")
        entries[name] = raw
    return entries


def _read_codes(file: str) -> tuple[Code, ...]:
    """Parse a ``code,term[,note]`` CSV; any malformed row is an error naming file and line."""
    resource = _data_file(file)
    if not resource.is_file():
        raise RuleError(f"codelist file {file!r} named in {_MANIFEST} is not in the package")
    text = resource.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"code", "term"} <= set(reader.fieldnames):
        raise RuleError(f"codelist file {file}: header must start code,term (got {reader.fieldnames})")
    codes: list[Code] = []
    seen: set[int] = set()
    for row in reader:
        line = reader.line_num
        raw = (row.get("code") or "").strip()
        if not raw.isdigit():
            raise RuleError(f"codelist file {file}, line {line}: code {raw!r} is not a SNOMED CT id")
        code = int(raw)
        if code in seen:
            raise RuleError(f"codelist file {file}, line {line}: duplicate code {code}")
        seen.add(code)
        codes.append(Code(code=code, term=(row.get("term") or "").strip(), note=(row.get("note") or "").strip()))
    return tuple(codes)


def list_clusters() -> list[str]:
    """Names of every shipped cluster, sorted."""
    return sorted(_manifest())


@cache
def load_codelist(cluster: str) -> Codelist:
    """The codelist of ``cluster`` (for example ``"BP_COD"``), with its provenance.

    Raises ``UnknownClusterError`` (a ``RuleError``) naming the known clusters when ``cluster`` is
    not shipped.
    """
    entries = _manifest()
    if cluster not in entries:
        raise UnknownClusterError(f"unknown codelist cluster {cluster!r}; known clusters: {', '.join(sorted(entries))}")
    raw = entries[cluster]
    return Codelist(
        cluster=cluster,
        description=str(raw["description"]),
        refset_id=str(raw["refset_id"]) or None,
        version=str(raw["version"]),
        source=str(raw["source"]),
        kind=str(raw["kind"]),
        codes=_read_codes(str(raw["file"])),
        file=str(raw["file"]),
        pcd_cluster=str(raw.get("pcd_cluster", "")) or None,
        note=str(raw.get("note", "")),
    )


def codes_for(clusters: Iterable[str]) -> dict[str, frozenset[int]]:
    """Concept ids of each named cluster; unknown clusters raise ``UnknownClusterError``."""
    return {name: load_codelist(name).ids() for name in clusters}


@cache
def _terms() -> dict[int, str]:
    terms: dict[int, str] = {}
    for name in _manifest():
        for c in load_codelist(name).codes:
            if c.term:
                terms.setdefault(c.code, c.term)
    return terms


def term_for(code: int) -> str | None:
    """The first term found for ``code`` across all lists (manifest order), or ``None``."""
    return _terms().get(code)
