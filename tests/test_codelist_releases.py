"""Codelist releases (issue 11): NHS England's PCD refset release and one-cluster OpenCodelists files are
imported all or nothing with file, line, column and reason for any problem; stored with provenance; listed,
shown, diffed and chosen; and a measure run with a release counts by it, falling back to the shipped list
for a cluster the release lacks, and says so. Every test runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from parity.codes import load_codelist
from parity.codes.release import PCD_COLUMNS, read_release_file
from parity.codes.store import (
    SHIPPED,
    choose_release,
    default_release,
    diff_releases,
    import_release,
    list_releases,
    release_codes,
    resolve_codelists,
)
from parity.db import Database
from parity.errors import ConfigurationError, NotFound, ValidationError
from parity.reports.measures import patient_table
from parity.reports.results import ResultStore
from parity.rules import load_measure
from spec.timeline import code_of, dataset, smi_patient, with_checks

AS_OF = date(2024, 3, 31)
ALCOHOL = load_codelist("ALC_COD").codes[0]      # a code that records alcohol consumption
OTHER_ALCOHOL = load_codelist("ALC_COD").codes[1]
MH = load_codelist("MH_COD").codes[0]
MH_OF_TIMELINES = code_of("MH_COD")  # the diagnosis code smi_patient() records


def pcd_text(rows: list[tuple[str, ...]], *, sep: str = "\t", header: tuple[str, ...] = PCD_COLUMNS) -> str:
    return "\n".join(sep.join(r) for r in [header, *rows]) + "\n"


def pcd_row(cluster: str, code: int, term: str = "t", ruleset: str = "QOF Mental health") -> tuple[str, ...]:
    return (cluster, f"{cluster} description", str(code), term, "999004691000230108", ruleset)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def a_release(tmp_path: Path, alcohol: list[int], name: str = "release.txt") -> Path:
    rows = [pcd_row("ALC_COD", c) for c in alcohol] + [pcd_row("MH_COD", MH_OF_TIMELINES)]
    return write(tmp_path, name, pcd_text(rows))


def broken_check_digit(code: int) -> str:
    text = str(code)
    return text[:-1] + str((int(text[-1]) + 1) % 10)


# -- reading: the three PCD forms and the OpenCodelists form ----------------------------------------------


def test_reads_tab_comma_and_xlsx_forms_alike(tmp_path: Path) -> None:
    rows = [pcd_row("ALC_COD", ALCOHOL.code, "Drinks"), pcd_row("MH_COD", MH.code)]
    tsv = read_release_file(write(tmp_path, "r.txt", pcd_text(rows)))
    csv_ = read_release_file(write(tmp_path, "r.csv", pcd_text(rows, sep=",")))
    book = Workbook()
    sheet = book.active
    for r in [PCD_COLUMNS, *rows]:
        # SNOMED codes as numbers, as a spreadsheet keeps them; the 18-digit refset id as text (a number that
        # long loses digits in a spreadsheet, and is then refused by its check digit rather than stored wrong)
        sheet.append([int(v) if v.isdigit() and len(v) < 16 else v for v in r])
    xlsx_path = tmp_path / "r.xlsx"
    book.save(xlsx_path)
    xlsx = read_release_file(xlsx_path)
    assert (tsv.form, csv_.form, xlsx.form) == ("pcd-tsv", "pcd-csv", "pcd-xlsx")
    for content in (tsv, csv_, xlsx):
        assert content.clusters() == {"ALC_COD": 1, "MH_COD": 1}
        assert {(c.cluster, c.code) for c in content.codes} == {("ALC_COD", ALCOHOL.code), ("MH_COD", MH.code)}
    assert tsv.sha256 == hashlib.sha256((tmp_path / "r.txt").read_bytes()).hexdigest()


def test_same_code_under_two_rulesets_is_one_membership(tmp_path: Path) -> None:
    rows = [pcd_row("ALC_COD", ALCOHOL.code, ruleset="QOF"), pcd_row("ALC_COD", ALCOHOL.code, ruleset="PLE PHSMI")]
    assert read_release_file(write(tmp_path, "r.txt", pcd_text(rows))).clusters() == {"ALC_COD": 1}


def test_opencodelists_one_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, "alc.csv", f"code,term\n{ALCOHOL.code},{ALCOHOL.term}\n{OTHER_ALCOHOL.code},x\n")
    content = read_release_file(path, cluster="alc_cod")
    assert content.form == "opencodelists" and content.clusters() == {"ALC_COD": 2}


# -- bad input: refused with file, line, column and reason, never a value from the file ------------------

BAD_PCD = [
    ("check digit", [pcd_row("ALC_COD", ALCOHOL.code)[:2] + (broken_check_digit(ALCOHOL.code), "t", "", "")],
     3, "SNOMED_code", "Verhoeff"),
    ("not digits", [("ALC_COD", "d", "12a45", "t", "", "")], 3, "SNOMED_code", "not a valid SNOMED CT"),
    ("empty code", [("ALC_COD", "d", "", "t", "", "")], 3, "SNOMED_code", "empty"),
    ("duplicate pair", [pcd_row("ALC_COD", ALCOHOL.code), pcd_row("ALC_COD", ALCOHOL.code)], 4, "SNOMED_code",
     "duplicate of line 3"),
    ("bad cluster id", [("alc cod!", "d", str(ALCOHOL.code), "t", "", "")], 3, "Cluster_ID", "not a cluster id"),
    ("extra field", [pcd_row("ALC_COD", ALCOHOL.code) + ("surplus",)], 3, None, "7 fields where the header has 6"),
]


@pytest.mark.parametrize(("what", "rows", "line", "column", "reason"), BAD_PCD, ids=[b[0] for b in BAD_PCD])
def test_bad_rows_are_refused_where_they_are(tmp_path: Path, what: str, rows: list[tuple[str, ...]], line: int,
                                             column: str | None, reason: str) -> None:
    good = pcd_row("MH_COD", MH.code)
    path = write(tmp_path, "pcd.txt", pcd_text([good, *rows]))
    with pytest.raises(ValidationError) as info:
        read_release_file(path)
    problem = info.value.problems[0]
    assert (problem.file, problem.line, problem.column) == ("pcd.txt", line, column), what
    assert reason in problem.reason, what
    assert str(ALCOHOL.code) not in str(info.value) and "surplus" not in str(info.value)


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    header = tuple(c for c in PCD_COLUMNS if c != "PCD_Refset_ID") + ("Secret_Column",)
    path = write(tmp_path, "pcd.txt", pcd_text([("ALC_COD", "d", str(ALCOHOL.code), "t", "r", "x")], header=header))
    with pytest.raises(ValidationError) as info:
        read_release_file(path)
    found = {(p.line, p.column, p.reason.split(";")[0]) for p in info.value.problems}
    assert (1, "column 6", "unknown column") in found
    assert any(p.column == "PCD_Refset_ID" and "missing column" in p.reason for p in info.value.problems)
    assert "Secret_Column" not in str(info.value)


def test_no_header_row_never_echoes_the_first_row(tmp_path: Path) -> None:
    """A file that starts with data: the first row's values must not come back as "column names"."""
    path = write(tmp_path, "pcd.txt", "\t".join(pcd_row("ALC_COD", ALCOHOL.code, "Sensitive term")) + "\n")
    with pytest.raises(ValidationError) as info:
        read_release_file(path)
    text = str(info.value) + " ".join(str(p) for p in info.value.problems)
    assert str(ALCOHOL.code) not in text and "Sensitive term" not in text
    assert info.value.problems[0].line == 1


@pytest.mark.parametrize(("content", "reason"), [("", "empty"), ("   \n\n", "empty"),
                                                  ("\t".join(PCD_COLUMNS) + "\n", "no codes")])
def test_empty_file(tmp_path: Path, content: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        read_release_file(write(tmp_path, "pcd.txt", content))
    assert reason in str(info.value) and "pcd.txt" in str(info.value)


def test_symlink_refused(tmp_path: Path) -> None:
    target = a_release(tmp_path, [ALCOHOL.code])
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(ValidationError, match="regular file"):
        read_release_file(link)


def test_opencodelists_bad_code_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "alc.csv", f"code,term\n{ALCOHOL.code},a\n{broken_check_digit(ALCOHOL.code)},b\n")
    with pytest.raises(ValidationError) as info:
        read_release_file(path, cluster="ALC_COD")
    p = info.value.problems[0]
    assert (p.file, p.line, p.column) == ("alc.csv", 3, "code")


# -- storing: all or nothing, with provenance --------------------------------------------------------------


def test_import_stores_provenance_and_lists(any_db: Database, tmp_path: Path) -> None:
    path = a_release(tmp_path, [ALCOHOL.code, OTHER_ALCOHOL.code])
    info = import_release(any_db, "pcd-2025-26", read_release_file(path))
    assert info.clusters == {"ALC_COD": 2, "MH_COD": 1}
    (f,) = info.files
    assert f["file_name"] == "release.txt" and f["form"] == "pcd-tsv"
    assert f["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert f["codes"] == 3 and f["clusters"] == 2 and f["imported_at"] is not None
    assert [r.name for r in list_releases(any_db)] == ["pcd-2025-26"]
    assert dict(release_codes(any_db, "pcd-2025-26")["ALC_COD"]) == {ALCOHOL.code: "t", OTHER_ALCOHOL.code: "t"}


def test_refused_import_stores_nothing(any_db: Database, tmp_path: Path) -> None:
    import_release(any_db, "a", read_release_file(a_release(tmp_path, [ALCOHOL.code])))
    before = any_db.execute("SELECT COUNT(*) FROM codelist_codes")[0][0]
    with pytest.raises(ConfigurationError, match="already exists"):
        import_release(any_db, "a", read_release_file(a_release(tmp_path, [OTHER_ALCOHOL.code], "other.txt")))
    assert any_db.execute("SELECT COUNT(*) FROM codelist_codes")[0][0] == before
    assert len(list_releases(any_db)[0].files) == 1


def test_a_release_assembled_cluster_by_cluster(any_db: Database, tmp_path: Path) -> None:
    alc = write(tmp_path, "alc.csv", f"code,term\n{ALCOHOL.code},a\n")
    mh = write(tmp_path, "mh.csv", f"code,term\n{MH.code},m\n")
    import_release(any_db, "opencodelists-2026", read_release_file(alc, cluster="ALC_COD"))
    info = import_release(any_db, "opencodelists-2026", read_release_file(mh, cluster="MH_COD"))
    assert info.clusters == {"ALC_COD": 1, "MH_COD": 1} and len(info.files) == 2
    with pytest.raises(ConfigurationError, match="already has cluster ALC_COD"):
        import_release(any_db, "opencodelists-2026", read_release_file(alc, cluster="ALC_COD"))


def test_diff_and_use(any_db: Database, tmp_path: Path) -> None:
    import_release(any_db, "old", read_release_file(a_release(tmp_path, [ALCOHOL.code], "old.txt")))
    import_release(any_db, "new", read_release_file(a_release(tmp_path, [OTHER_ALCOHOL.code], "new.txt")))
    changes = {r["cluster"]: r for r in diff_releases(any_db, "old", "new")}
    assert [c for c, _ in changes["ALC_COD"]["added"]] == [OTHER_ALCOHOL.code]
    assert [c for c, _ in changes["ALC_COD"]["removed"]] == [ALCOHOL.code]
    assert changes["MH_COD"]["added"] == [] and changes["MH_COD"]["removed"] == []
    assert default_release(any_db) == SHIPPED
    choose_release(any_db, "new")
    assert default_release(any_db) == "new"
    with pytest.raises(NotFound):
        choose_release(any_db, "never-imported")


# -- a measure counts by the release it is given, and says so ----------------------------------------------


def alcohol_patient(code: int):
    p = with_checks(smi_patient(), "2023-09-01", ("bmi", "blood_pressure", "lipids", "glucose", "smoking"))
    return p.snomed(code, "2023-09-01")


def test_measure_counts_by_the_release_and_falls_back(any_db: Database, tmp_path: Path) -> None:
    """The release's ALC_COD lacks the patient's alcohol code: with it, alcohol is missing; shipped, it is done.
    Clusters the release lacks (BP_COD, ...) come from the shipped lists, and the provenance says which."""
    dataset(alcohol_patient(ALCOHOL.code)).write(any_db)
    import_release(any_db, "narrow", read_release_file(a_release(tmp_path, [OTHER_ALCOHOL.code])))
    phsmi = load_measure("phsmi")
    shipped = patient_table(any_db, phsmi, AS_OF, codelists=resolve_codelists(any_db, SHIPPED)).iloc[0]
    narrow_lists = resolve_codelists(any_db, "narrow")
    narrow = patient_table(any_db, phsmi, AS_OF, codelists=narrow_lists).iloc[0]
    assert bool(shipped["alcohol"]) and bool(shipped["all_six"])
    assert not bool(narrow["alcohol"]) and not bool(narrow["all_six"]) and bool(narrow["on_register"])
    text = narrow_lists.describe(phsmi.clusters())
    assert text.startswith("codelists: release narrow (fingerprint ")
    fallbacks = text.split("shipped lists for ")[1].split(", ")
    assert "BP_COD" in fallbacks and "ALC_COD" not in fallbacks and "MH_COD" not in fallbacks


def test_results_are_keyed_by_release(any_db: Database, tmp_path: Path) -> None:
    """Precomputed results never mix releases; choosing a new default changes what the store serves."""
    dataset(alcohol_patient(ALCOHOL.code)).write(any_db)
    any_db.execute("CREATE TABLE IF NOT EXISTS loads (load_id VARCHAR(36), loaded_at TIMESTAMP, source VARCHAR(1000),"
                   " mode VARCHAR(10), patients BIGINT, registrations BIGINT, events BIGINT, medications BIGINT,"
                   " warnings BIGINT)")
    store = ResultStore(any_db)
    assert int(store.aggregates("phsmi", AS_OF)["england"]["all_six"].iloc[0]) == 1
    import_release(any_db, "narrow", read_release_file(a_release(tmp_path, [OTHER_ALCOHOL.code])))
    assert int(store.aggregates("phsmi", AS_OF, codelists="narrow")["england"]["all_six"].iloc[0]) == 0
    assert int(store.aggregates("phsmi", AS_OF, codelists=SHIPPED)["england"]["all_six"].iloc[0]) == 1
    choose_release(any_db, "narrow")
    store.invalidate()
    assert int(store.aggregates("phsmi", AS_OF)["england"]["all_six"].iloc[0]) == 0


# -- the command line ---------------------------------------------------------------------------------------


def test_cli_import_list_show_diff_use_measure(tmp_path: Path) -> None:
    from parity.cli import app

    db = str(tmp_path / "p.duckdb")
    runner = CliRunner()

    def parity(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True,
                              timeout=300)

    extract = tmp_path / "extract"
    r = runner.invoke(app, ["synth", "--out", str(extract), "--scale", "practice", "--area", "G81001",
                            "--patients", "60", "--seed", "3", "--as-of", "2024-03-31"])
    assert r.exit_code == 0, r.output
    assert runner.invoke(app, ["load", str(extract), "--database", db, "--no-precompute"]).exit_code == 0
    bad = write(tmp_path, "bad.txt", pcd_text([pcd_row("ALC_COD", int(broken_check_digit(ALCOHOL.code)))]))
    r = parity("codes", "import", str(bad), "--release", "x", "--database", db)
    assert r.returncode == 4 and "bad.txt, line 2, column SNOMED_code" in r.stderr, r.stderr
    assert str(ALCOHOL.code)[:-1] not in r.stderr + r.stdout
    assert runner.invoke(app, ["codes", "list", "--database", db, "--format", "json"]).exit_code == 0
    good = a_release(tmp_path, [OTHER_ALCOHOL.code])
    r = runner.invoke(app, ["codes", "import", str(good), "--release", "pcd-2025-26", "--database", db])
    assert r.exit_code == 0, r.output
    listed = json.loads(runner.invoke(app, ["codes", "list", "--database", db, "--format", "json"]).stdout)
    assert [x["release"] for x in listed] == ["shipped", "pcd-2025-26"] and listed[0]["default"]
    shown = runner.invoke(app, ["codes", "show", "ALC_COD", "--release", "pcd-2025-26", "--database", db,
                                "--format", "csv"])
    assert shown.stdout.splitlines()[1:] == [f"{OTHER_ALCOHOL.code},t"]
    diff = runner.invoke(app, ["codes", "diff", "shipped", "pcd-2025-26", "--database", db, "--format", "json"])
    alc = [x for x in json.loads(diff.stdout) if x["cluster"] == "ALC_COD"][0]
    assert alc["pcd-2025-26"] == 1 and alc["removed"] == len(load_codelist("ALC_COD")) - 1 and alc["added"] == 0
    before = json.loads(runner.invoke(app, ["measure", "--database", db, "--as-of", "2024-03-31", "--level",
                                            "england", "--format", "json"]).stdout)
    assert runner.invoke(app, ["codes", "use", "pcd-2025-26", "--database", db]).exit_code == 0
    after = json.loads(runner.invoke(app, ["measure", "--database", db, "--as-of", "2024-03-31", "--level",
                                           "england", "--format", "json"]).stdout)
    assert after["metadata"]["codelists"].startswith("release pcd-2025-26 (fingerprint ")
    assert before["metadata"]["codelists"].startswith("shipped with Parity")
    assert after["rows"][0]["alcohol"] <= before["rows"][0]["alcohol"]
    assert after["rows"][0]["register"] <= before["rows"][0]["register"]  # MH_COD narrowed to one code
    table = runner.invoke(app, ["measure", "--database", db, "--as-of", "2024-03-31", "--codelists", "shipped"])
    assert "codelists: shipped with Parity" in table.stdout and "2022-23 structure" in table.stdout
    csv_out = runner.invoke(app, ["measure", "--database", db, "--as-of", "2024-03-31", "--format", "csv"]).stdout
    header = next(iter(io.StringIO(csv_out))).strip().split(",")
    assert header[-2:] == ["structure", "codelists"]
