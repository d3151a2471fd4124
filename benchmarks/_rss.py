"""Peak resident memory of this process, sampled in a background thread, overall and per phase.

``resource.getrusage(...).ru_maxrss`` gives the lifetime peak only (and cannot be reset), so a
thread samples ``psutil.Process().memory_info().rss`` every ``interval`` seconds and keeps the peak
of every named phase. DuckDB allocates inside the process, so its buffers are included. Both the
sampled peak and ``ru_maxrss`` are reported; a short spike between two samples can be missed by the
sampler but never by ``ru_maxrss``.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import threading
from collections.abc import Iterator

import psutil

GIB = 1024**3


def maxrss_bytes() -> int:
    """Lifetime peak RSS of this process (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class RssSampler:
    """Samples this process's RSS; ``phase(name)`` records the peak seen while the block runs."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self.phases: dict[str, int] = {}
        self._active: dict[str, int] = {}
        self._proc = psutil.Process()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        rss = self._proc.memory_info().rss
        with self._lock:
            self.peak = max(self.peak, rss)
            for name in self._active:
                self._active[name] = max(self._active[name], rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        rss = self._proc.memory_info().rss
        with self._lock:
            self._active[name] = max(rss, self.phases.get(name, 0))
        try:
            yield
        finally:
            self._sample()
            with self._lock:
                self.phases[name] = self._active.pop(name)

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
