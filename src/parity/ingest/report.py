"""What validation found: errors (which block a load) and aggregated data-quality warnings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from parity.errors import Problem, ValidationError
from parity.ingest.spec import SPECS, TABLE_ORDER

#: At most this many errors are kept (the total is always counted).
MAX_ERRORS = 100
#: A warning names at most this many example lines.
WARNING_EXAMPLES = 5


class AggregatedProblem(Problem):
    """A data-quality finding that applies to many rows: how many, and the first few lines."""

    __slots__ = ("count", "lines")

    def __init__(self, file: str, column: str | None, reason: str, count: int,
                 lines: Sequence[int], severity: str = "warning") -> None:
        lines = sorted(lines)[:WARNING_EXAMPLES]
        super().__init__(file, lines[0] if lines else None, column, reason, severity)
        self.count = count
        self.lines = list(lines)

    def __str__(self) -> str:
        where = self.file + (f", column {self.column}" if self.column else "")
        rows = "1 row" if self.count == 1 else f"{self.count:,} rows"
        shown = ", ".join(str(n) for n in self.lines)
        more = ", …" if self.count > len(self.lines) else ""
        label = "line" if len(self.lines) == 1 else "lines"
        return f"{where}: {self.reason} ({rows}; {label} {shown}{more})"


@dataclass
class ValidationReport:
    """The outcome of checking an extract.

    ``problems`` are errors (capped at ``MAX_ERRORS``, sorted by file then line); ``error_count`` is
    their total. ``warnings`` are aggregated: one ``AggregatedProblem`` per kind of finding, with its
    row count and first lines. ``counts`` is rows read per table. ``files`` names the file read for
    each table.
    """

    problems: list[Problem] = field(default_factory=list)
    warnings: list[AggregatedProblem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    error_count: int = 0
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def warning_rows(self) -> int:
        return sum(w.count for w in self.warnings)

    def summary(self) -> str:
        """One line: the first problem, and how many more (never any patient data)."""
        if self.ok:
            return "extract is valid"
        first = self.problems[0] if self.problems else "problems found"
        more = self.error_count - 1
        tail = f" (and {more:,} more problem{'s' if more != 1 else ''})" if more > 0 else ""
        return f"extract not loaded: {first}{tail}"

    def raise_for_errors(self) -> None:
        """Raise ``ExtractValidationError`` if there is any error."""
        if not self.ok:
            raise ExtractValidationError(self)


class ExtractValidationError(ValidationError):
    """An extract failed validation; ``report`` has every finding, ``problems`` the first 100."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary(), list(report.problems))
        self.report = report
        self.total = report.error_count


def _position(table: str, column: str | None) -> tuple[int, int]:
    t = TABLE_ORDER.index(table)
    cols = SPECS[table].column_names
    return t, (cols.index(column) if column in cols else -1)


class Collector:
    """Gathers findings while checks run; ``report`` sorts and caps them."""

    def __init__(self) -> None:
        self._errors: list[tuple[tuple, Problem]] = []
        self._error_count = 0
        self._warnings: list[tuple[tuple, AggregatedProblem]] = []

    def error(self, table: str, problem: Problem) -> None:
        self.errors(table, [problem], 1)

    def errors(self, table: str, problems: Sequence[Problem], total: int) -> None:
        """Record ``total`` errors of which ``problems`` are the first (up to MAX_ERRORS)."""
        self._error_count += total
        for p in problems:
            t, c = _position(table, p.column)
            self._errors.append(((t, p.line or 0, c), p))

    def rows(self, table: str, file: str, column: str | None, reason: str, total: int,
             lines: Sequence[int]) -> None:
        """Record ``total`` rows with the same error, of which ``lines`` are the first."""
        if total:
            self.errors(table, [Problem(file, int(n), column, reason) for n in sorted(lines)], total)

    def warning(self, table: str, file: str, column: str | None, reason: str, total: int,
                lines: Sequence[int]) -> None:
        if total:
            t, c = _position(table, column)
            w = AggregatedProblem(file, column, reason, int(total), [int(n) for n in lines])
            self._warnings.append(((t, w.line or 0, c), w))

    @property
    def error_count(self) -> int:
        return self._error_count

    def report(self, counts: dict[str, int], files: dict[str, str]) -> ValidationReport:
        errors = [p for _, p in sorted(self._errors, key=lambda e: e[0])][:MAX_ERRORS]
        warnings = [w for _, w in sorted(self._warnings, key=lambda e: e[0])]
        return ValidationReport(errors, warnings, dict(counts), self._error_count, dict(files))
