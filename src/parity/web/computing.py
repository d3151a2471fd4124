"""Figures not ready yet: worked out in the background while the page says so (issue 16, target 3).

An organisation page for a reporting date nobody has asked for since the last load needs the engine
(that date's aggregates, its quarterly and monthly trend, the red-zone measure): seconds at region scale.
Rather than hold the request, the page starts that work in a background thread (one per data version,
choice of structure and codelists, measure and date, however many people ask), waits ``WAIT_SECONDS`` for
it, and if it is not done answers with a short page saying what is being computed. ``parity.js`` then asks
for the same address again (``FILL_HEADER``; such a request waits up to ``FILL_WAIT_SECONDS``) and puts the
figures in place of that page's content when they are ready, without reloading; without JavaScript the page
has a link to the figures. Each step takes the database lock on its own, so other requests get in between.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from parity.reports.results import current_choice
from parity.web import views
from parity.web.deps import base_context, get_state

WAIT_SECONDS = 0.25  #: ``parity serve``: a first request waits this long before it shows "Computing figures …"
FILL_WAIT_SECONDS = 5.0  #: a fill request (from parity.js) waits this long before answering "not yet"
FILL_HEADER = "x-parity-fill"
_MAX_JOBS = 256
#: Called before each step (tests hold a computation at a known point with it); None in service.
before_step: Callable[[], None] | None = None


class _Job:
    def __init__(self, steps: list[Callable[[], Any]]) -> None:
        self.steps = steps
        self.done = threading.Event()
        self.failed = False

    def run(self) -> None:
        try:
            for step in self.steps:
                if before_step is not None:
                    before_step()
                step()
                time.sleep(0.005)  # let requests waiting for the database lock in between steps
        except Exception:  # noqa: BLE001 - the page computes again in the request and reports the error there
            self.failed = True
        finally:
            self.done.set()


class Computations:
    """Background computations by key; a finished one is remembered until its data version is gone."""

    def __init__(self) -> None:
        self._jobs: dict[tuple, _Job] = {}
        self._lock = threading.Lock()

    def ready(self, key: tuple, steps: Callable[[], list[Callable[[], Any]]], wait: float | None) -> bool:
        """True when the work of ``key`` is done (started now if new; waits up to ``wait`` seconds, None:
        until done)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or (job.done.is_set() and job.failed):
                job = self._jobs[key] = _Job(steps())
                ctx = contextvars.copy_context()  # the request's choice of structure and codelists
                threading.Thread(target=ctx.run, args=(job.run,), name="parity-compute", daemon=True).start()
                self._prune(key[0])
        if not job.done.wait(wait):
            return False
        return True  # failed too: the request computes again itself and shows the error as usual

    def _prune(self, version: str) -> None:
        if len(self._jobs) <= _MAX_JOBS:
            return
        for k in [k for k, j in self._jobs.items() if j.done.is_set() and k[0] != version]:
            del self._jobs[k]


def organisation_steps(results: Any, measure_id: str, as_of: date) -> list[Callable[[], Any]]:
    """What an organisation page reads, as separate steps: the date's aggregates, its quarterly and
    monthly trend (each built for every organisation at once) and the red-zone measure."""
    return [
        lambda: views.aggregate_index(results, measure_id, as_of),
        lambda: views.trend(results, measure_id, as_of, "england", "ENG"),
        lambda: views.trend(results, measure_id, as_of, "england", "ENG", monthly=True),
        lambda: views.red_zone(results, measure_id, as_of, "england", "ENG"),
    ]


def figures_ready(request: Request, measure_id: str, as_of: date) -> bool:
    """Whether an organisation page's figures for (measure, as_of) are ready, starting them if not."""
    state = get_state(request)
    jobs: Computations = state.computations
    key = (state.results.version(), current_choice(), measure_id, as_of)
    wait = FILL_WAIT_SECONDS if request.headers.get(FILL_HEADER) else state.compute_wait
    return jobs.ready(key, lambda: organisation_steps(state.results, measure_id, as_of), wait)


def keep_warm(state: Any, stop: threading.Event, every: float = 2.0) -> None:
    """Until ``stop``: whenever the data version changes (a load, a codelist release), work out the default
    reporting date's organisation pages in the background, so the first page after a load finds them ready.
    Runs in its own thread (``start_keeping_warm``)."""
    from parity.dates import default_as_of, today

    seen = None
    while not stop.is_set():
        try:
            version = state.results.version()
            if version != seen:
                seen = version
                as_of = default_as_of(today(getattr(state.settings, "today", None)))
                # The dashboard's default measure only: another is worked out when first asked for (its
                # red-zone evaluation alone is seconds of CPU a region, which pages would queue behind).
                measure_id = views.MEASURES[0]
                key = (version, current_choice(), measure_id, as_of)
                state.computations.ready(key, lambda m=measure_id, d=as_of: organisation_steps(state.results, m, d),
                                         0.0)
        except Exception:  # noqa: BLE001 - warming is an optimisation; a page computes what it needs itself
            pass
        stop.wait(every)


def start_keeping_warm(state: Any) -> threading.Event:
    """Start ``keep_warm`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=keep_warm, args=(state, stop), name="parity-keep-warm", daemon=True).start()
    return stop


def computing_page(request: Request, actor: Any, as_of: date) -> Response:
    """"Computing figures for <date> …": filled in by parity.js, with a link for browsers without it."""
    state = get_state(request)
    ctx = base_context(request, actor, title=f"Computing figures for {as_of:%-d %B %Y}", as_of=as_of,
                       fill_url=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    # Not stored anywhere on the way: this answer is only for now.
    return state.templates.TemplateResponse(request, "computing.html", ctx,
                                            headers={"Cache-Control": "no-store"})
