"""Codelists: every list the measures need loads, every code is a SNOMED CT concept id, local
lists do not overlap wrongly with published ones, and every list says where it came from."""

from __future__ import annotations

import csv
import itertools
import re
from importlib import resources
from pathlib import Path

import pytest

from parity.codes import (
    KINDS,
    Codelist,
    codes_for,
    is_concept_id,
    list_clusters,
    load_codelist,
    term_for,
)
from parity.codes.sctid import partition, verhoeff_ok
from parity.errors import RuleError
from parity.rules import list_measures, load_measure

DATA = resources.files("parity.codes") / "data"
SHARED_CODELISTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "codelists"

# Clusters the measures name but for which no public SNOMED CT code was found (SOURCES.md).
# The test below fails when one of them gains codes, so this set is kept honest.
KNOWN_EMPTY = frozenset({"FAST_COD"})


def measure_clusters() -> list[tuple[str, str]]:
    return sorted((m, c) for m in list_measures() for c in load_measure(m).clusters())


def mapping() -> dict[str, set[str]]:
    """cluster -> refset ids, from the shipped PCD cluster/refset/ruleset mapping."""
    text = (DATA / "pcd_ruleset_cluster_mapping.csv").read_text(encoding="utf-8")
    out: dict[str, set[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        out.setdefault(row["cluster_id"], set()).add(row["pcd_refset_id"])
    return out


# --- measures can load what they need -------------------------------------------------------------


@pytest.mark.parametrize(("measure", "cluster"), measure_clusters())
def test_every_measure_cluster_loads_and_is_non_empty(measure: str, cluster: str) -> None:
    codelist = load_codelist(cluster)
    if cluster in KNOWN_EMPTY:
        assert len(codelist) == 0, f"{cluster} now has codes: remove it from KNOWN_EMPTY and SOURCES.md gaps"
        assert "EMPTY" in codelist.note
    else:
        assert len(codelist) > 0, f"{cluster} (used by {measure}) has no codes"


def test_every_check_of_every_measure_has_a_non_empty_done_cluster() -> None:
    for name in list_measures():
        for check in load_measure(name).checks:
            assert any(len(load_codelist(c)) for c in check.done), (name, check.id)


# --- every code is a syntactically valid SNOMED CT concept id ---------------------------------------


@pytest.mark.parametrize("cluster", list_clusters())
def test_every_code_is_a_concept_sctid(cluster: str) -> None:
    bad = [c.code for c in load_codelist(cluster).codes if not is_concept_id(c.code)]
    assert not bad, f"{cluster}: not valid SNOMED CT concept ids (check digit or partition): {bad}"


@pytest.mark.parametrize(
    "code",
    [75367002, 266919005, 999012731000230108, 1019431000000105, 53981000237105, 116471000119100],
)
def test_known_concept_ids_are_valid(code: int) -> None:
    assert is_concept_id(code)


def test_sctid_checks_reject_bad_ids() -> None:
    assert not verhoeff_ok("266919006")  # one digit off
    assert not verhoeff_ok("266919050")  # transposed digits
    assert not is_concept_id(12345)  # too short
    assert partition(413123006) == "00"
    assert partition(999012731000230108) == "10"
    # A description id (partition 01) is a valid SCTID but not a concept.
    assert verhoeff_ok("397732011") and not is_concept_id(397732011)


# --- local lists do not overlap wrongly with published ones -----------------------------------------


@pytest.mark.parametrize("measure", list_measures())
def test_declined_codes_are_never_done(measure: str) -> None:
    m = load_measure(measure)
    done = {c for check in m.checks for c in check.done}
    refused = {c for check in m.checks for c in check.declined}
    if m.pca:
        refused |= set(m.pca.any_of)
    done_ids = frozenset().union(*codes_for(done).values())
    for cluster, ids in codes_for(refused).items():
        assert not ids & done_ids, f"{measure}: {cluster} codes also count as done: {sorted(ids & done_ids)}"


@pytest.mark.parametrize("measure", list_measures())
def test_done_clusters_of_different_checks_share_no_codes(measure: str) -> None:
    checks = load_measure(measure).checks
    done = {check.id: frozenset().union(*codes_for(check.done).values()) for check in checks}
    for a, b in itertools.combinations(sorted(done), 2):
        assert not done[a] & done[b], f"{measure}: checks {a} and {b} share codes {sorted(done[a] & done[b])}"


def test_smoking_status_lists_are_disjoint() -> None:
    never, current, ex = (load_codelist(c).ids() for c in ("NSMOK_COD", "LSMOK_COD", "EXSMOK_COD"))
    assert not never & current
    assert not never & ex
    assert not current & ex


def test_bmi_category_list_is_disjoint_from_published_bmi_lists() -> None:
    bmi = load_codelist("BMI_COD").ids()
    assert not bmi & load_codelist("BMIVAL_COD").ids()
    assert not bmi & load_codelist("BMIOBESE_COD").ids()


def test_hba1c_lists_are_disjoint() -> None:
    assert not load_codelist("DCCTHBA1C_COD").ids() & load_codelist("IFCCHBAM_COD").ids()


def test_known_mh_remission_overlap_is_pinned() -> None:
    # clinical-spec.md section 2.2: 23 of PRIMIS SMHRES's 36 codes are also in MH_COD v20210127,
    # so remission must be decided by which code is latest. A change here changes the register.
    assert len(load_codelist("MH_COD").ids() & load_codelist("MHREM_COD").ids()) == 23


def test_illicit_substance_assessment_is_a_subset_of_illsub() -> None:
    assert load_codelist("ILLSUBASS_COD").ids() <= load_codelist("ILLSUB_COD").ids()


# --- provenance ---------------------------------------------------------------------------------------

COMMIT = re.compile(r" @ [0-9a-f]{40}\b")


@pytest.mark.parametrize("cluster", list_clusters())
def test_provenance_is_present(cluster: str) -> None:
    cl = load_codelist(cluster)
    assert cl.description and cl.version and cl.source and cl.file
    assert cl.kind in KINDS
    if cl.kind == "local":
        assert cl.source == "Parity local list"
        assert cl.file.startswith("local_")
        for code in cl.codes:
            assert code.term, f"{cluster} {code.code}: no term"
            assert code.note, f"{cluster} {code.code}: no note saying where it came from"
    else:
        assert COMMIT.search(cl.source), f"{cluster}: source must name repository, path and commit"
        assert all(code.term for code in cl.codes)
    if cl.kind == "substitute":
        assert cl.refset_id is None or "SUBSTITUTE" in cl.description.upper()


@pytest.mark.parametrize("cluster", list_clusters())
def test_refset_ids_agree_with_the_pcd_mapping(cluster: str) -> None:
    cl = load_codelist(cluster)
    known = mapping()
    if cl.refset_id is not None:
        assert is_concept_id(cl.refset_id)
        if cluster in known:
            assert known[cluster] == {cl.refset_id}
    elif cl.kind == "pcd":
        assert cluster not in known, f"{cluster}: refset id is in the mapping but not the manifest"
    if cl.pcd_cluster is not None:
        assert cl.pcd_cluster in known, f"{cluster}: pcd_cluster {cl.pcd_cluster} is not a PCD cluster"


def test_every_data_file_is_in_the_manifest() -> None:
    files = {p.name for p in DATA.iterdir() if p.name.endswith(".csv")}
    named = {load_codelist(c).file for c in list_clusters()}
    assert files - named == {"pcd_ruleset_cluster_mapping.csv"}
    assert (DATA / "SOURCES.md").is_file()


def test_published_files_are_unchanged_copies() -> None:
    if not SHARED_CODELISTS.is_dir():
        pytest.skip("shared/data/codelists is not beside the repository")
    for cluster in list_clusters():
        cl = load_codelist(cluster)
        if cl.kind == "local":
            continue
        shipped = (DATA / cl.file).read_bytes()
        assert shipped == (SHARED_CODELISTS / cl.file).read_bytes(), cl.file


# --- API ------------------------------------------------------------------------------------------------


def test_load_codelist_returns_a_cached_codelist() -> None:
    bp = load_codelist("BP_COD")
    assert isinstance(bp, Codelist)
    assert bp is load_codelist("BP_COD")
    assert 75367002 in bp and 1 not in bp
    assert bp.refset_id == "999012731000230108"
    assert bp.kind == "pcd"
    assert bp.term_for(413123006) is None


def test_substitute_remission_list_says_what_it_is() -> None:
    rem = load_codelist("MHREM_COD")
    assert rem.kind == "substitute"
    assert rem.file == "primis_smhres.csv"
    assert "PRIMIS" in rem.description


def test_unknown_cluster_names_the_known_ones() -> None:
    with pytest.raises(RuleError, match="unknown codelist cluster 'NO_SUCH_COD'.*BP_COD"):
        load_codelist("NO_SUCH_COD")
    with pytest.raises(RuleError):
        codes_for(["BP_COD", "NO_SUCH_COD"])
    with pytest.raises(LookupError):  # callers probing for optional lists can catch LookupError
        load_codelist("NO_SUCH_COD")


def test_codes_for_and_term_for() -> None:
    got = codes_for(["NSMOK_COD", "BPDEC_COD"])
    assert got == {"NSMOK_COD": load_codelist("NSMOK_COD").ids(), "BPDEC_COD": frozenset({413123006})}
    assert term_for(266919005) == "Never smoked tobacco"
    assert term_for(413123006) == "Blood pressure procedure refused"
    assert term_for(1) is None


def test_list_clusters_is_sorted_and_complete() -> None:
    names = list_clusters()
    assert names == sorted(names)
    assert {"MH_COD", "MHREM_COD", "SEV_MENTAL", "WEIGHT_COD", "SYSBP_QOF"} <= set(names)
