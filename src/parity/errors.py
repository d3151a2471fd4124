"""One exception tree for Parity, mapped to exit codes in one place.

Messages of ``ParityError`` are shown to users as one line (CLI) and must never contain patient
data: no NHS numbers, dates of birth or clinical values. Validation errors name the file, line,
column and reason instead.
"""

from __future__ import annotations


class ParityError(Exception):
    """Base of every error Parity reports to a user without a traceback."""

    exit_code = 1


class ConfigurationError(ParityError):
    """Bad settings or command-line options."""

    exit_code = 2


class DatabaseError(ParityError):
    """The database could not be reached or is not a Parity database."""

    exit_code = 3


class ValidationError(ParityError):
    """An extract failed validation; nothing was loaded.

    ``problems`` holds every problem found (capped), each naming file, line, column and reason.
    """

    exit_code = 4

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class RuleError(ParityError):
    """A measure definition is malformed or unknown."""

    exit_code = 5


class Problem:
    """One finding about an extract: where it is and why it matters.

    ``line`` counts the header as line 1 (so the first data row is line 2), as a spreadsheet
    user would see it. ``severity`` is ``"error"`` (blocks the load) or ``"warning"`` (data quality).
    """

    __slots__ = ("file", "line", "column", "reason", "severity")

    def __init__(self, file: str, line: int | None, column: str | None, reason: str,
                 severity: str = "error") -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
        self.severity = severity

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.reason}"

    def __repr__(self) -> str:
        return f"Problem({self!s}, severity={self.severity!r})"


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception (1 for anything unexpected)."""
    if isinstance(exc, ParityError):
        return exc.exit_code
    return 1


class AuthenticationError(ParityError):
    """Sign-in or API token rejected.

    One generic message whatever the cause (unknown user, wrong password, disabled account, unknown
    or revoked token), so the message cannot be used to find out which usernames exist.
    """

    exit_code = 6


class PermissionDenied(ParityError):
    """The user is signed in but their role or organisation does not allow this."""

    exit_code = 7


class NotFound(ParityError):
    """A named thing (user, organisation, patient) does not exist or is not visible to the user."""

    exit_code = 8


class TooManyAttempts(ParityError):
    """Too many failed sign-ins for a username or client address; ``retry_after`` is in seconds."""

    exit_code = 9

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
