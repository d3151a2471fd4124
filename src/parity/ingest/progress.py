"""Progress of a load on stderr (rich): one line per stage, with row counts and elapsed time.

Only file names, stage names and counts are shown, never values from the extract.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any


class Stage:
    """A running stage; ``done`` sets what its line says when it finishes."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.result = description

    def done(self, result: str) -> None:
        self.result = result


class Progress:
    """Shows stages when enabled; does nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        # Not a terminal (make demo piped to a log, CI): a plain line as each stage starts and ends,
        # since a live bar would print nothing until the end (issue 16 target 5).
        self._lines = enabled and not sys.stderr.isatty()
        if enabled and not self._lines:
            from rich.console import Console
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                SpinnerColumn(finished_text="✓"),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    @contextlib.contextmanager
    def stage(self, description: str) -> Iterator[Stage]:
        stage = Stage(description)
        if self._lines:
            started = time.perf_counter()
            sys.stderr.write(f"load: {description} …\n")
            sys.stderr.flush()
            yield stage
            sys.stderr.write(f"load: {stage.result} ({time.perf_counter() - started:.1f} s)\n")
            sys.stderr.flush()
            return
        if self._bar is None:
            yield stage
            return
        task = self._bar.add_task(description, total=1)
        try:
            yield stage
        except BaseException:
            self._bar.update(task, completed=1, description=f"{description}: stopped")
            raise
        self._bar.update(task, completed=1, description=stage.result)
