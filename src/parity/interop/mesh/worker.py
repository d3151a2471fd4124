"""The background MESH worker of ``parity serve``: send, track and poll on a timer.

One pass is what ``parity mesh send`` and ``parity mesh poll`` do by hand. It runs in a daemon
thread on the app's own database connection (``db.lock`` serialises it with page requests), and
logs counts only, never message content.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from parity.db import Database
from parity.interop.checks import payload_source
from parity.interop.mesh import inbox, outbox, replies
from parity.interop.mesh.config import MeshConfig

log = logging.getLogger("parity.mesh")


@dataclass
class PassSummary:
    send: outbox.SendSummary
    tracked: outbox.SendSummary
    poll: inbox.PollSummary
    replies: replies.ReplySummary

    def describe(self) -> str:
        return f"{self.send.describe()}; {self.poll.describe()}; replies sent {self.replies.sent}"


def run_pass(db: Database, config: MeshConfig) -> PassSummary:
    """Send what is due, track what was sent, poll every mailbox of this deployment (checks, letters
    and acknowledgements), then send the acknowledgements owed to senders."""
    sent = outbox.send_due(db, config, payload_source(db, config))
    tracked = outbox.track(db, config)
    polled = inbox.poll(db, config)
    answered = replies.send_pending(db, config)
    return PassSummary(sent, tracked, polled, answered)


class MeshWorker:
    """Runs ``run_pass`` every ``interval`` seconds until ``stop``."""

    def __init__(self, db: Database, config: MeshConfig, interval: float) -> None:
        self.db = db
        self.config = config
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parity-mesh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                summary = run_pass(self.db, self.config)
                log.info("MESH pass: %s", summary.describe())
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one bad pass
                log.error("MESH pass failed: %s", type(exc).__name__)
            self._stop.wait(self.interval)
