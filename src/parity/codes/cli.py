"""``parity codes …``: import NHS England's PCD refset release each QOF year, list, show, diff and
choose the release a database's figures use (README "Codelists")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.clikit import DatabaseOpt, OutFormat, emit
from parity.settings import Settings

codes_app = typer.Typer(help="Codelist releases: import, list, show, diff and choose the default.",
                        no_args_is_help=True)


def _db(database: str | None, *, create: bool = False):  # noqa: ANN202 - parity.db.Database
    from parity.db import open_database

    settings = Settings.from_env(database=database)
    return open_database(settings.database_url, create=create)


@codes_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="PCD refset release (.txt tab-separated, .csv or .xlsx), or with "
                                              "--cluster a one-cluster OpenCodelists CSV (code,term)")],
    release: Annotated[str, typer.Option("--release", help="Name of the release, e.g. pcd-2025-26")],
    cluster: Annotated[str | None, typer.Option("--cluster", help="The file is one cluster (OpenCodelists "
                                                                  "download); its cluster id")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Import a codelist release, all or nothing (file, line, column and reason for any problem)."""
    from parity.codes.release import read_release_file
    from parity.codes.store import check_release_name, import_release

    check_release_name(release)
    content = read_release_file(file, cluster=cluster)
    with _db(database, create=True) as db:
        info = import_release(db, release, content)
    typer.echo(f"imported {file.name} into release {release}: {len(content.clusters())} cluster(s), "
               f"{len(content.codes)} code(s) (sha256 {content.sha256[:12]}…); the release now has "
               f"{len(info.clusters)} cluster(s), {info.codes} code(s)")


@codes_app.command("list")
def list_(database: DatabaseOpt = None,
          fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table) -> None:
    """Stored releases with provenance (file, sha256, when imported), and which one is the default."""
    import pandas as pd

    from parity.codes.store import SHIPPED, default_release, list_releases, shipped_codelists

    with _db(database) as db:
        releases = list_releases(db)
        chosen = default_release(db)
    rows = [{"release": SHIPPED, "default": chosen == SHIPPED, "clusters": None, "codes": None,
             "files": "shipped with Parity (codes/data/SOURCES.md)", "sha256": shipped_codelists().key,
             "imported_at": None}]
    for r in releases:
        rows.append({"release": r.name, "default": chosen == r.name, "clusters": len(r.clusters), "codes": r.codes,
                     "files": "; ".join(f["file_name"] for f in r.files),
                     "sha256": "; ".join(f["sha256"][:12] for f in r.files),
                     "imported_at": str(max(f["imported_at"] for f in r.files))})
    emit(pd.DataFrame(rows), fmt, title="Codelist releases")


@codes_app.command("show")
def show(
    cluster: Annotated[str, typer.Argument(help="Cluster id, e.g. ALC_COD")],
    release: Annotated[str | None, typer.Option("--release", help="Release (default: this database's)")] = None,
    database: DatabaseOpt = None,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table,
) -> None:
    """The codes of one cluster in a release (a cluster the release lacks shows the shipped list)."""
    import pandas as pd

    from parity.codes.registry import load_codelist
    from parity.codes.store import SHIPPED, default_release, release_codes

    cluster = cluster.strip().upper()
    with _db(database) as db:
        name = release or default_release(db)
        codes = release_codes(db, name)
    source = name
    if cluster not in codes:
        shipped = load_codelist(cluster)  # UnknownClusterError (exit 5) when no list has it
        codes = {cluster: [(c.code, c.term) for c in shipped.codes]}
        source = SHIPPED if name == SHIPPED else f"shipped (release {name} has no {cluster})"
    df = pd.DataFrame([{"code": str(c), "term": t} for c, t in codes[cluster]], columns=["code", "term"])
    emit(df, fmt, title=f"{cluster} — {len(df)} codes — {source}")


@codes_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="Older release (or 'shipped')")],
    b: Annotated[str, typer.Argument(help="Newer release (or 'shipped')")],
    database: DatabaseOpt = None,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table,
    codes: Annotated[bool, typer.Option("--codes", help="One row per code added or removed")] = False,
) -> None:
    """Codes added and removed per cluster from release A to release B."""
    import pandas as pd

    from parity.codes.store import diff_releases

    with _db(database) as db:
        rows = diff_releases(db, a, b)
    if codes:
        out = [{"cluster": r["cluster"], "change": change, "code": str(code), "term": term}
               for r in rows for change, key in (("added", "added"), ("removed", "removed"))
               for code, term in r[key]]
        df = pd.DataFrame(out, columns=["cluster", "change", "code", "term"])
    else:
        df = pd.DataFrame([{"cluster": r["cluster"], a: r["in_a"], b: r["in_b"], "added": len(r["added"]),
                            "removed": len(r["removed"])} for r in rows if r["added"] or r["removed"]],
                          columns=["cluster", a, b, "added", "removed"])
    emit(df, fmt, title=f"Codelist changes from {a} to {b}")


@codes_app.command("use")
def use(
    release: Annotated[str, typer.Argument(help="Release to use by default ('shipped' for Parity's own lists)")],
    database: DatabaseOpt = None,
) -> None:
    """Make a release this database's default for every measure, page, API call and report."""
    from parity.codes.store import choose_release

    with _db(database) as db:
        choose_release(db, release)
    typer.echo(f"this database now uses codelist release {release} by default; run 'parity refresh' to "
               "precompute the dashboard's results with it")
