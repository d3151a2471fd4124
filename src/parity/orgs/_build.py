"""Derive the package data in ``parity/orgs/data/`` from the raw NHS files (maintainers only).

Run ``python -m parity.orgs._build SHARED_DIR [OUT_DIR]`` where ``SHARED_DIR`` holds
``data/qof/...`` and ``data/ods/...`` as described in ``data/SOURCES.md``. Every input is checked
against its recorded SHA-256 first, and the output is byte-for-byte reproducible (gzip without
timestamps), so ``tests/test_orgs.py`` can rebuild it and compare. Nothing here runs at import
of ``parity.orgs``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
from pathlib import Path

import pandas as pd

from parity.orgs._names import tidy_name

# Inputs, relative to the shared directory, with the SHA-256 recorded in the shared SOURCES.md files.
INPUTS: dict[str, tuple[str, str]] = {
    "mapping_2223": (
        "data/qof/qof_2022-23/MAPPING_NHS_GEOGRAPHIES_2223.csv",
        "e9c2583a6809a621d79379785730ea0a645478dba727221463e6e0edf2b8e677",
    ),
    "mapping_2026": (
        "data/ods/gp-reg-pat-prac-map_2026-08/gp-reg-pat-prac-map.csv",
        "a7460a62a55f34fde47ebc5ac6a32432c6e3aa217dafc70c2c48625be8bde677",
    ),
    "prevalence_2223": (
        "data/qof/qof_2022-23/PREVALENCE_2223.csv",
        "6a57fa96f110548af98849c0f655fcd61499fb078fc81a8dabff92f9b3e1b103",
    ),
    "prevalence_2021": (
        "data/qof/qof_2020-21/PREVALENCE_2021_v2.csv",
        "169415d0b43da3feb8ade3ed17cda033f96f45e682dc5e9c0ac6f9dbf7ebca8a",
    ),
}

# structure -> (input key, source column for each hierarchy column)
STRUCTURE_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "2022-23": ("mapping_2223", {
        "practice_code": "PRACTICE_CODE", "practice_name": "PRACTICE_NAME",
        "pcn_code": "PCN_ODS_CODE", "pcn_name": "PCN_NAME",
        "sub_icb_code": "SUB_ICB_ODS_CODE", "sub_icb_name": "SUB_ICB_NAME",
        "icb_code": "ICB_ODS_CODE", "icb_name": "ICB_NAME",
        "region_code": "REGION_ODS_CODE", "region_name": "REGION_NAME",
    }),
    "2026": ("mapping_2026", {
        "practice_code": "PRACTICE_CODE", "practice_name": "PRACTICE_NAME",
        "pcn_code": "PCN_CODE", "pcn_name": "PCN_NAME",
        "sub_icb_code": "SUB_ICB_LOCATION_CODE", "sub_icb_name": "SUB_ICB_LOCATION_NAME",
        "icb_code": "ICB_CODE", "icb_name": "ICB_NAME",
        "region_code": "COMM_REGION_CODE", "region_name": "COMM_REGION_NAME",
    }),
}
YEAR_SOURCES: dict[str, str] = {"2022-23": "prevalence_2223", "2020-21": "prevalence_2021"}

SOURCE_UNALLOCATED_PCN = "U"  # the code both mapping files give practices outside any PCN
UNALLOCATED_PCN_PREFIX = "U-"
ENGLAND_CODE = "ENG"
ENGLAND_NAME = "England"

PRACTICES_FILE = "practices.csv.gz"
ORGANISATIONS_FILE = "organisations.csv"
REGISTERS_FILE = "register_sizes.csv.gz"


class BuildError(RuntimeError):
    """An input file is missing, changed, or breaks an assumption of the derivation."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _input(shared: Path, key: str) -> Path:
    rel, expected = INPUTS[key]
    path = shared / rel
    if not path.is_file():
        raise BuildError(f"missing input {path}")
    actual = sha256(path)
    if actual != expected:
        raise BuildError(f"{path}: sha256 {actual} does not match the recorded {expected}")
    return path


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.apply(lambda col: col.str.strip())


def unallocated_pcn_code(sub_icb_code: str) -> str:
    """Placeholder PCN code for a sub-ICB's practices outside any PCN (never a real ODS code)."""
    return f"{UNALLOCATED_PCN_PREFIX}{sub_icb_code}"


def unallocated_pcn_name(sub_icb_code: str) -> str:
    return f"Unallocated - {sub_icb_code}"


def _one_name_per_code(frame: pd.DataFrame, code: str, name: str, structure: str) -> None:
    counts = frame.groupby(code)[name].nunique()
    if (counts > 1).any():
        raise BuildError(f"{structure}: {code} with several names: {sorted(counts[counts > 1].index)}")


def _one_parent(frame: pd.DataFrame, code: str, parent: str, structure: str) -> None:
    counts = frame.groupby(code)[parent].nunique()
    if (counts > 1).any():
        raise BuildError(f"{structure}: {code} in several {parent}: {sorted(counts[counts > 1].index)}")


def wide_structure(shared: Path, structure: str) -> pd.DataFrame:
    """One row per practice with tidy names and placeholder PCNs (the ``practices`` table shape)."""
    key, columns = STRUCTURE_SOURCES[structure]
    raw = _read(_input(shared, key))
    frame = pd.DataFrame({ours: raw[theirs] for ours, theirs in columns.items()})
    if frame["practice_code"].duplicated().any() or (frame == "").any().any():
        raise BuildError(f"{structure}: duplicate practice codes or empty fields")
    for level in ("practice", "pcn", "sub_icb", "icb", "region"):
        frame[f"{level}_name"] = frame[f"{level}_name"].map(tidy_name)
    unallocated = frame["pcn_code"] == SOURCE_UNALLOCATED_PCN
    frame.loc[unallocated, "pcn_code"] = frame.loc[unallocated, "sub_icb_code"].map(unallocated_pcn_code)
    frame.loc[unallocated, "pcn_name"] = frame.loc[unallocated, "sub_icb_code"].map(unallocated_pcn_name)
    for level in ("pcn", "sub_icb", "icb", "region"):
        _one_name_per_code(frame, f"{level}_code", f"{level}_name", structure)
    _one_parent(frame, "sub_icb_code", "icb_code", structure)
    _one_parent(frame, "icb_code", "region_code", structure)
    frame.insert(0, "structure", structure)
    return frame.sort_values("practice_code", ignore_index=True)


def pcn_parents(frame: pd.DataFrame) -> pd.Series:
    """Each PCN's sub-ICB: the one holding most of its practices (ties: the lowest code).

    A few PCNs have practices in two or three sub-ICBs (some across ICBs); every practice keeps its
    own sub-ICB in the ``practices`` table, this is only the PCN's single parent for navigation.
    """
    counts = frame.groupby(["pcn_code", "sub_icb_code"]).size().rename("n").reset_index()
    counts = counts.sort_values(["pcn_code", "n", "sub_icb_code"], ascending=[True, False, True])
    return counts.drop_duplicates("pcn_code").set_index("pcn_code")["sub_icb_code"]


def organisations_of(frame: pd.DataFrame) -> pd.DataFrame:
    """Distinct organisations of one structure at levels pcn..england, each with its parent code."""
    structure = frame["structure"].iloc[0]
    parents = pcn_parents(frame)
    pcns = frame[["pcn_code", "pcn_name"]].drop_duplicates("pcn_code")
    blocks = [pd.DataFrame({
        "level": "pcn", "org_code": pcns["pcn_code"], "org_name": pcns["pcn_name"],
        "parent_code": pcns["pcn_code"].map(parents),
    })]
    for level, parent in (("sub_icb", "icb"), ("icb", "region"), ("region", None)):
        orgs = frame[[f"{level}_code", f"{level}_name", *([f"{parent}_code"] if parent else [])]]
        orgs = orgs.drop_duplicates(f"{level}_code")
        blocks.append(pd.DataFrame({
            "level": level, "org_code": orgs[f"{level}_code"], "org_name": orgs[f"{level}_name"],
            "parent_code": orgs[f"{parent}_code"] if parent else ENGLAND_CODE,
        }))
    blocks.append(pd.DataFrame(
        {"level": ["england"], "org_code": [ENGLAND_CODE], "org_name": [ENGLAND_NAME], "parent_code": [""]}
    ))
    orgs = pd.concat(blocks, ignore_index=True)
    orgs.insert(0, "structure", structure)
    order = {"pcn": 0, "sub_icb": 1, "icb": 2, "region": 3, "england": 4}
    orgs["_order"] = orgs["level"].map(order)
    orgs = orgs.sort_values(["_order", "org_code"]).drop(columns="_order")
    return orgs.reset_index(drop=True)


def register_table(shared: Path, year: str) -> pd.DataFrame:
    """QOF mental health register (GROUP_CODE MH) and practice list size, one row per practice."""
    raw = _read(_input(shared, YEAR_SOURCES[year]))
    mh = raw[raw["GROUP_CODE"] == "MH"]
    if mh["PRACTICE_CODE"].duplicated().any():
        raise BuildError(f"{year}: several MH rows for one practice")
    register = mh["REGISTER"].astype(float)
    list_size = mh["PRACTICE_LIST_SIZE"].astype(float)
    if (register != register.round()).any() or (list_size != list_size.round()).any():
        raise BuildError(f"{year}: non-integer register or list size")
    out = pd.DataFrame({
        "year": year, "practice_code": mh["PRACTICE_CODE"],
        "register": register.astype("int64"), "list_size": list_size.astype("int64"),
    })
    return out.sort_values("practice_code", ignore_index=True)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def build_files(shared: Path) -> dict[str, bytes]:
    """The package data files (name -> exact bytes) derived from the inputs under ``shared``."""
    wides = [wide_structure(shared, s) for s in STRUCTURE_SOURCES]
    practices = pd.concat(
        [w[["structure", "practice_code", "practice_name", "pcn_code", "sub_icb_code"]] for w in wides],
        ignore_index=True,
    )
    organisations = pd.concat([organisations_of(w) for w in wides], ignore_index=True)
    registers = pd.concat([register_table(shared, y) for y in YEAR_SOURCES], ignore_index=True)
    return {
        PRACTICES_FILE: _gzip_bytes(_csv_bytes(practices)),
        ORGANISATIONS_FILE: _csv_bytes(organisations),
        REGISTERS_FILE: _gzip_bytes(_csv_bytes(registers)),
    }


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        sys.stderr.write("usage: python -m parity.orgs._build SHARED_DIR [OUT_DIR]\n")
        return 2
    shared = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("data")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in build_files(shared).items():
        (out / name).write_bytes(data)
        sys.stdout.write(f"{out / name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
