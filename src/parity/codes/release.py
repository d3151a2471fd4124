"""Read a codelist release file: NHS England's Primary Care Domain (PCD) refset release, or a
one-cluster OpenCodelists download.

Real deployments keep codelists current from the PCD refset release published each QOF year
(``YYYYMMDD_PCD_Refset_Content.txt`` on TRUD): one row per cluster, SNOMED CT concept and
service/ruleset, with the header

    Cluster_ID  Cluster_Description  SNOMED_code  SNOMED_code_description  PCD_Refset_ID  Service_and_Ruleset

as tab-separated text, and the same columns as comma-separated text or an ``.xlsx`` workbook.
OpenCodelists serves one cluster at a time as ``code,term`` CSV (``--cluster ID``).

Reading is all or nothing, like an extract: every problem is reported with file, line, column and
reason (``ValidationError``), and a problem never quotes a value from the file. A cluster appears
once per ruleset that uses it, so the same concept in the same cluster under two rulesets is one
membership; the same (cluster, concept, ruleset) twice is a duplicate and refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from parity.codes.sctid import is_concept_id
from parity.errors import Problem, ValidationError

__all__ = ["PCD_COLUMNS", "OPENCODELISTS_COLUMNS", "ReleaseCode", "ReleaseFile", "read_release_file"]

PCD_COLUMNS: tuple[str, ...] = (
    "Cluster_ID", "Cluster_Description", "SNOMED_code", "SNOMED_code_description", "PCD_Refset_ID",
    "Service_and_Ruleset",
)
OPENCODELISTS_COLUMNS: tuple[str, ...] = ("code", "term")
_REQUIRED_PCD = ("Cluster_ID", "SNOMED_code")
MAX_PROBLEMS = 50
# Cluster ids are upper-case words joined by underscores (MH_COD, BMI30_COD, ...): anything else is
# not a cluster id, and is refused rather than stored under a name no measure could ask for.
_CLUSTER_ID = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,63}$")


@dataclass(frozen=True)
class ReleaseCode:
    """One concept of one cluster in a release."""

    cluster: str
    code: int
    term: str
    cluster_description: str = ""
    refset_id: str = ""


@dataclass
class ReleaseFile:
    """A release file read and checked: its codes, and what identifies the file."""

    file_name: str
    sha256: str
    form: str  # "pcd-tsv", "pcd-csv", "pcd-xlsx" or "opencodelists"
    codes: list[ReleaseCode] = field(default_factory=list)

    def clusters(self) -> dict[str, int]:
        """Codes per cluster."""
        out: dict[str, int] = {}
        for c in self.codes:
            out[c.cluster] = out.get(c.cluster, 0) + 1
        return dict(sorted(out.items()))


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def add(self, line: int | None, column: str | None, reason: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(self.file, line, column, reason))

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            more = "+" if n >= MAX_PROBLEMS else ""
            raise ValidationError(f"{self.items[0]} ({n}{more} problem(s); nothing was imported)", self.items)


def _refuse(file: str, line: int | None, column: str | None, reason: str) -> ValidationError:
    problem = Problem(file, line, column, reason)
    return ValidationError(f"{problem} (nothing was imported)", [problem])


def read_release_file(path: Path, *, cluster: str | None = None) -> ReleaseFile:
    """Read and check one release file; raise ``ValidationError`` (nothing read) on any problem.

    ``cluster`` set: the file is a one-cluster OpenCodelists CSV (``code,term``) for that cluster.
    Otherwise a PCD refset release: ``.xlsx``, or text whose header decides tab or comma.
    """
    name = path.name
    if path.is_symlink() or not path.is_file():
        raise _refuse(name, None, None, "not a regular file (symbolic links and special files are refused)")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise _refuse(name, None, None, "the file is empty")
    if cluster is not None:
        cluster = cluster.strip().upper()
        if not _CLUSTER_ID.match(cluster):
            raise _refuse(name, None, None, "--cluster is not a cluster id (upper-case letters, digits and _)")
        rows = _text_rows(name, data, delimiter=",")
        return ReleaseFile(name, digest, "opencodelists", _opencodelists(name, rows, cluster))
    if name.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        return ReleaseFile(name, digest, "pcd-xlsx", _pcd(name, _xlsx_rows(name, data)))
    first = data.split(b"\n", 1)[0]
    delimiter = "\t" if b"\t" in first else ","
    form = "pcd-tsv" if delimiter == "\t" else "pcd-csv"
    return ReleaseFile(name, digest, form, _pcd(name, _text_rows(name, data, delimiter=delimiter)))


# -- readers: (line number, list of cells) ---------------------------------------------------------

def _decode(name: str, data: bytes) -> str:
    if b"\x00" in data:
        raise _refuse(name, None, None, "the file holds NUL bytes: not a text release file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _refuse(name, line, None, "not UTF-8 text") from None


def _text_rows(name: str, data: bytes, *, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    text = _decode(name, data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error:
        raise _refuse(name, reader.line_num + 1, None, "malformed quoting") from None


def _xlsx_rows(name: str, data: bytes) -> Iterator[tuple[int, list[str]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise _refuse(name, None, None, "not a readable .xlsx workbook") from None
    sheet = book.worksheets[0]
    for i, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield i, ["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                  for v in row]
    book.close()


# -- the two forms ---------------------------------------------------------------------------------

def _header(name: str, rows: Iterator[tuple[int, list[str]]], expected: tuple[str, ...],
            required: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Column positions by canonical name, and the number of fields of the header row."""
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        header = [c.strip() for c in cells]
        problems = _Problems(name)
        known = {e.lower(): e for e in expected}
        index: dict[str, int] = {}
        for i, col in enumerate(header):
            if not col and i == len(header) - 1:
                continue  # a trailing delimiter
            canonical = known.get(col.lower())
            if canonical is None:
                # Never echo the header cell: a file with no header row would put a data value here.
                problems.add(line, f"column {i + 1}", f"unknown column; expected {', '.join(expected)}")
            elif canonical in index:
                problems.add(line, canonical, "column appears twice")
            else:
                index[canonical] = i
        for col in expected:
            if col not in index:
                problems.add(line, col, "missing column" + ("" if col in required else " (the release has it)"))
        problems.raise_if_any()
        return index, len(cells)
    raise _refuse(name, None, None, "the file has no header row")


def _cell(cells: list[str], index: dict[str, int], col: str) -> str:
    i = index.get(col)
    return cells[i].strip() if i is not None and i < len(cells) else ""


def _check_code(problems: _Problems, line: int, column: str, raw: str) -> int | None:
    if not raw:
        problems.add(line, column, "empty SNOMED CT concept id")
        return None
    if not raw.isdigit() or not is_concept_id(raw):
        problems.add(line, column, "not a valid SNOMED CT concept id (digits, partition and Verhoeff check digit)")
        return None
    return int(raw)


def _data_rows(rows: Iterator[tuple[int, list[str]]], width: int,
               problems: _Problems) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows after the header; a row with more fields than the header is a problem."""
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > width:
            problems.add(line, None, f"{len(cells)} fields where the header has {width}")
            continue
        yield line, cells


def _pcd(name: str, rows: Iterator[tuple[int, list[str]]]) -> list[ReleaseCode]:
    index, width = _header(name, rows, PCD_COLUMNS, _REQUIRED_PCD)
    problems = _Problems(name)
    seen: dict[tuple[str, int, str], int] = {}
    members: dict[tuple[str, int], ReleaseCode] = {}
    for line, cells in _data_rows(rows, width, problems):
        cluster = _cell(cells, index, "Cluster_ID").upper()
        if not _CLUSTER_ID.match(cluster):
            problems.add(line, "Cluster_ID", "not a cluster id (upper-case letters, digits and _)")
            continue
        code = _check_code(problems, line, "SNOMED_code", _cell(cells, index, "SNOMED_code"))
        if code is None:
            continue
        refset = _cell(cells, index, "PCD_Refset_ID")
        if refset and not (refset.isdigit() and is_concept_id(refset)):
            problems.add(line, "PCD_Refset_ID", "not a valid SNOMED CT refset id")
            continue
        ruleset = _cell(cells, index, "Service_and_Ruleset")
        key = (cluster, code, ruleset)
        if key in seen:
            problems.add(line, "SNOMED_code", f"duplicate of line {seen[key]} (same cluster, code and ruleset)")
            continue
        seen[key] = line
        members.setdefault((cluster, code), ReleaseCode(
            cluster=cluster, code=code, term=_cell(cells, index, "SNOMED_code_description"),
            cluster_description=_cell(cells, index, "Cluster_Description"), refset_id=refset))
    problems.raise_if_any()
    if not members:
        raise _refuse(name, None, None, "the file has a header but no codes")
    return list(members.values())


def _opencodelists(name: str, rows: Iterator[tuple[int, list[str]]], cluster: str) -> list[ReleaseCode]:
    index, width = _header(name, rows, OPENCODELISTS_COLUMNS, OPENCODELISTS_COLUMNS)
    problems = _Problems(name)
    seen: dict[int, int] = {}
    out: list[ReleaseCode] = []
    for line, cells in _data_rows(rows, width, problems):
        code = _check_code(problems, line, "code", _cell(cells, index, "code"))
        if code is None:
            continue
        if code in seen:
            problems.add(line, "code", f"duplicate of line {seen[code]} (same code in the cluster)")
            continue
        seen[code] = line
        out.append(ReleaseCode(cluster=cluster, code=code, term=_cell(cells, index, "term")))
    problems.raise_if_any()
    if not out:
        raise _refuse(name, None, None, "the file has a header but no codes")
    return out
