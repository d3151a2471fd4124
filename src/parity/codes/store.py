"""Codelist releases kept in the database, with provenance, and the choice of release for a figure.

Tables (created on first use, the same SQL on DuckDB and PostgreSQL):

- ``codelist_files``: one row per imported file: release name, file name, sha256, form, when
  imported, clusters and codes it held;
- ``codelist_codes``: one row per (release, cluster, concept) with its term, cluster description and
  PCD refset id;
- ``codelist_choice``: append-only choices of this database's default release (``parity codes use``);
  the latest row wins; ``shipped`` means the lists shipped with Parity.

A measure run with a release reads each cluster from it; a cluster the release lacks falls back to
the shipped list, and ``Codelists.fallbacks`` says which (every output names both).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources

from parity.codes.registry import list_clusters, load_codelist
from parity.codes.release import ReleaseFile
from parity.errors import ConfigurationError, NotFound

__all__ = [
    "SHIPPED",
    "Codelists",
    "ReleaseInfo",
    "choose_release",
    "default_release",
    "diff_releases",
    "ensure_codelist_schema",
    "import_release",
    "list_releases",
    "release_codes",
    "resolve_codelists",
    "shipped_codelists",
]

SHIPPED = "shipped"
"""The name of the codelists shipped with Parity (``codes/data``)."""

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def ensure_codelist_schema(db) -> None:  # noqa: ANN001 - parity.db.Database (codes stays import-light)
    """Create the codelist tables if missing (idempotent)."""
    from parity.db.schema import CODELIST_TABLES

    for table in CODELIST_TABLES.values():
        db.execute(table.ddl())


def check_release_name(name: str) -> str:
    """A release name: 1-64 letters, digits, ``-``, ``_`` or ``.``; ``shipped`` is reserved."""
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        raise ConfigurationError("a release name is 1-64 letters, digits, '-', '_' or '.' (e.g. pcd-2025-26)")
    return name


@dataclass(frozen=True)
class ReleaseInfo:
    """A stored release: its files (provenance) and codes per cluster."""

    name: str
    files: tuple[dict, ...]
    clusters: dict[str, int]

    @property
    def codes(self) -> int:
        return sum(self.clusters.values())


@dataclass
class Codelists:
    """The codelists one figure used: a release (or the shipped lists) and its clusters.

    ``codes_for`` has the shape the engines take (``CodesFor``). ``fallbacks`` collects, as the
    engine asks, the clusters the release lacks that came from the shipped lists instead.
    """

    release: str
    key: str
    _codes: dict[str, frozenset[int]] = field(default_factory=dict)
    fallbacks: set[str] = field(default_factory=set)

    def codes_for(self, clusters: Iterable[str]) -> dict[str, frozenset[int]]:
        out: dict[str, frozenset[int]] = {}
        for name in clusters:
            if self.release != SHIPPED and name in self._codes:
                out[name] = self._codes[name]
            else:
                if self.release != SHIPPED:
                    self.fallbacks.add(name)
                out[name] = load_codelist(name).ids()
        return out

    def fallbacks_for(self, clusters: Iterable[str]) -> list[str]:
        """Of ``clusters``, those this release lacks (they come from the shipped lists)."""
        if self.release == SHIPPED:
            return []
        return sorted(c for c in set(clusters) if c not in self._codes)

    def describe(self, clusters: Iterable[str] | None = None) -> str:
        """One line for footers: "codelists: pcd-2025-26 (shipped lists for ALC_COD, GLUC_COD)"."""
        fingerprint = self.key.rpartition("@")[2]
        if self.release == SHIPPED:
            return f"codelists: shipped with Parity (fingerprint {fingerprint})"
        missing = self.fallbacks_for(clusters) if clusters is not None else sorted(self.fallbacks)
        text = f"codelists: release {self.release} (fingerprint {fingerprint})"
        if missing:
            text += f"; shipped lists for {', '.join(missing)}"
        return text


@cache
def shipped_key() -> str:
    """A fingerprint of the shipped codelists (manifest and every file), so stored results computed
    with an older package's lists are never served for a newer one."""
    digest = hashlib.sha256()
    data = resources.files("parity.codes").joinpath("data")
    for name in sorted(p.name for p in data.iterdir() if p.name.endswith((".csv", ".toml"))):
        digest.update(name.encode())
        digest.update(data.joinpath(name).read_bytes())
    return f"{SHIPPED}@{digest.hexdigest()[:12]}"


def shipped_codelists() -> Codelists:
    """The lists shipped with Parity."""
    return Codelists(SHIPPED, shipped_key())


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def import_release(db, name: str, release: ReleaseFile) -> ReleaseInfo:  # noqa: ANN001
    """Store ``release`` under ``name`` in one transaction (all or nothing).

    A full PCD release may only be imported into a new name. A one-cluster file (OpenCodelists)
    adds its cluster to a release (new or existing) that does not have that cluster yet, so a
    release can be assembled cluster by cluster.
    """
    check_release_name(name)
    if name == SHIPPED:
        raise ConfigurationError("'shipped' names the lists shipped with Parity; choose another release name")
    with db.lock:
        ensure_codelist_schema(db)
        with db.transaction():
            existing = {r[0] for r in db.execute("SELECT DISTINCT cluster FROM codelist_codes WHERE release = ?",
                                                 [name])}
            if existing and release.form != "opencodelists":
                raise ConfigurationError(f"release {name} already exists; import a new release under a new name")
            clash = sorted(existing & set(release.clusters()))
            if clash:
                raise ConfigurationError(f"release {name} already has cluster {clash[0]}")
            if db.execute("SELECT COUNT(*) FROM codelist_files WHERE release = ? AND sha256 = ?",
                          [name, release.sha256])[0][0]:
                raise ConfigurationError(f"this file is already in release {name}")
            rows = [(name, c.cluster, c.code, c.term or None, c.cluster_description or None, c.refset_id or None)
                    for c in release.codes]
            _insert_codes(db, rows)
            db.execute("INSERT INTO codelist_files VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [name, release.file_name, release.sha256, release.form, _now(), len(release.clusters()),
                        len(release.codes)])
    return release_info(db, name)


def _insert_codes(db, rows: list[tuple]) -> None:  # noqa: ANN001
    """Bulk insert through Arrow (tens of thousands of rows in a PCD release)."""
    import pyarrow as pa

    from parity.db.bulk import arrow_schema, insert_arrow

    names = ("release", "cluster", "code", "term", "cluster_description", "refset_id")
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    insert_arrow(db, "codelist_codes", pa.table(columns, schema=arrow_schema("codelist_codes")))


def list_releases(db) -> list[ReleaseInfo]:  # noqa: ANN001
    """Every stored release, oldest import first."""
    with db.lock:
        ensure_codelist_schema(db)
        names = [r[0] for r in db.execute(
            "SELECT release, MIN(imported_at) AS first FROM codelist_files GROUP BY release ORDER BY first, release")]
        return [release_info(db, n) for n in names]


def release_info(db, name: str) -> ReleaseInfo:  # noqa: ANN001
    """Provenance and codes per cluster of a stored release (``NotFound`` when there is none)."""
    with db.lock:
        ensure_codelist_schema(db)
        files = db.execute("SELECT file_name, sha256, form, imported_at, clusters, codes FROM codelist_files"
                           " WHERE release = ? ORDER BY imported_at, file_name", [name])
        if not files:
            raise NotFound(f"no codelist release named {name}; see 'parity codes list'")
        counts = db.execute("SELECT cluster, COUNT(*) FROM codelist_codes WHERE release = ? GROUP BY cluster"
                            " ORDER BY cluster", [name])
    keys = ("file_name", "sha256", "form", "imported_at", "clusters", "codes")
    return ReleaseInfo(name, tuple(dict(zip(keys, f, strict=True)) for f in files),
                       {str(c): int(n) for c, n in counts})


def release_codes(db, name: str) -> dict[str, list[tuple[int, str]]]:  # noqa: ANN001
    """cluster -> [(code, term)] of a stored release, or of the shipped lists for ``shipped``."""
    if name == SHIPPED:
        return {c: [(x.code, x.term) for x in load_codelist(c).codes] for c in list_clusters()}
    release_info(db, name)  # NotFound for an unknown name
    with db.lock:
        rows = db.execute("SELECT cluster, code, term FROM codelist_codes WHERE release = ? ORDER BY cluster, code",
                          [name])
    out: dict[str, list[tuple[int, str]]] = {}
    for cluster, code, term in rows:
        out.setdefault(str(cluster), []).append((int(code), term or ""))
    return out


def _release_key(db, name: str) -> str:  # noqa: ANN001
    files = db.execute("SELECT sha256 FROM codelist_files WHERE release = ? ORDER BY sha256", [name])
    digest = hashlib.sha256("|".join(r[0] for r in files).encode()).hexdigest()[:12]
    return f"{name}@{digest}"


def choose_release(db, name: str) -> None:  # noqa: ANN001
    """Make ``name`` (or ``shipped``) this database's default release (``parity codes use``)."""
    if name != SHIPPED:
        release_info(db, name)
    with db.lock:
        ensure_codelist_schema(db)
        db.execute("INSERT INTO codelist_choice VALUES (?, ?)", [_now(), name])


def default_release(db) -> str:  # noqa: ANN001
    """This database's default release: the latest ``parity codes use``, else ``shipped``."""
    with db.lock:
        ensure_codelist_schema(db)
        rows = db.execute("SELECT release FROM codelist_choice ORDER BY chosen_at DESC LIMIT 1")
    return str(rows[0][0]) if rows else SHIPPED


def resolve_codelists(db, name: str | None = None) -> Codelists:  # noqa: ANN001
    """The ``Codelists`` for ``name`` (default: this database's default release)."""
    name = name or default_release(db)
    if name == SHIPPED:
        return shipped_codelists()
    check_release_name(name)
    codes = release_codes(db, name)
    with db.lock:
        key = _release_key(db, name)
    return Codelists(name, key, {c: frozenset(code for code, _ in v) for c, v in codes.items()})


def diff_releases(db, a: str, b: str) -> list[dict]:  # noqa: ANN001
    """Per cluster present in either release: codes added and removed going from ``a`` to ``b``."""
    left, right = release_codes(db, a), release_codes(db, b)
    out = []
    for cluster in sorted(set(left) | set(right)):
        la = dict(left.get(cluster, []))
        rb = dict(right.get(cluster, []))
        added = sorted(set(rb) - set(la))
        removed = sorted(set(la) - set(rb))
        out.append({"cluster": cluster, "in_a": len(la), "in_b": len(rb),
                    "added": [(c, rb[c]) for c in added], "removed": [(c, la[c]) for c in removed]})
    return out


CodesFor = Callable[[Iterable[str]], dict[str, frozenset[int]]]
