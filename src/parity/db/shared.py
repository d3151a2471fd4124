"""One DuckDB file, several processes: the CLI beside a running server (issue 16, target 4).

DuckDB lets one process hold a file for writing, or any number hold it read-only, never both
(https://duckdb.org/docs/stable/connect/concurrency). A server that held the file for writing all
the time (as Parity did) made every other command fail. So a process opens a *shared* DuckDB file
like this:

* its connection is an in-memory DuckDB that ATTACHes the file (as ``parity``, made the default
  catalog) **read-only** between writes, so the server, ``parity measure``, ``parity worklist`` … read
  side by side. The in-memory connection never changes, so Ibis tables, the engine's temporary
  tables and registered views outlive every re-attach;
* a write (a statement DuckDB refuses read-only, or a ``transaction()``) re-attaches the file for
  writing just for that write, then read-only again. DETACH checkpoints, so the file never keeps a
  write-ahead log between writes. Measured on an ICB-scale file (34 MB): re-attaching read-only
  3.6 ms, a write with its two re-attaches 20 ms, against 12 ms for a fresh read-only connection and
  56 ms for a fresh writing connection, write and close (``/tmp`` probe, issue 16 notes);
* a server keeps the file attached for writing after its first write (``make_sticky``), so an audited
  page costs a statement, until another process asks for the file: a reader that finds it held touches
  ``<file>.want``, and the server, which looks every 0.1 s, attaches it read-only again and writes the
  short way for the next ``YIELD_SECONDS``;
* ``parity load`` builds a copy and renames it in (``parity.db.rewrite``). While it does, it holds
  the file's *writer lock* (``flock`` on ``<file>.lock``) exclusively; every in-place write takes it
  shared, so no write lands in the old file after the copy was taken (it would be lost at the
  rename). Readers are never stopped: they keep the old file until the load has finished (its
  precompute included), then move to the new one on their next statement (``follow``);
* where a process cannot get in within ``PARITY_DB_WAIT_SECONDS`` (default 15), the error names the
  process holding the file, by pid and Parity command (never its arguments, which can hold an NHS
  number), and what to do.

What cannot work: a write by another process (``parity users add``, ``parity contact add`` …) while
a server holds the file read-only; that error names the server. The web app makes the same changes,
and PostgreSQL has no such limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from parity.errors import DatabaseError

ALIAS = "parity"  # the attached file's catalog name (the default catalog while attached)
LOCK_SUFFIX = ".lock"
DEFAULT_WAIT_SECONDS = 15.0
YIELD_SECONDS = 10.0  # after another process asked, a server writes without keeping the file this long
_POLL_SECONDS = 0.05
_PID = re.compile(r"\(PID (\d+)\)")
# Writer locks this process holds exclusively (a load), by lock file: its own in-place writes skip
# the shared lock (flock locks belong to an open file, so a second flock would wait for the first).
_EXCLUSIVE: dict[str, int] = {}
# The shared file objects of this process, by file (DuckDB attaches a file once per process).
_OPEN: dict[str, SharedFile] = {}


def open_shared(file: Path) -> tuple[SharedFile, Any]:
    """This process's ``SharedFile`` for ``file`` (attached read-only, made if missing) and a new cursor."""
    key = str(file)
    shared = _OPEN.get(key)
    if shared is None:
        shared = SharedFile(file)
        try:
            if not file.exists():
                with shared.writing():  # creates the file, then attaches it read-only
                    pass
            else:
                shared.attach(read_only=True)
        except BaseException:
            shared.raw.close()
            raise
        _OPEN[key] = shared
    return shared, shared.connect()


def wait_seconds() -> float:
    """How long to wait for another process before giving up (``PARITY_DB_WAIT_SECONDS``)."""
    raw = os.environ.get("PARITY_DB_WAIT_SECONDS")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_WAIT_SECONDS
    except ValueError:
        return DEFAULT_WAIT_SECONDS


def lock_path(file: Path) -> Path:
    """The writer lock beside a DuckDB ``file``."""
    return file.with_name(file.name + LOCK_SUFFIX)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _ident(file: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def describe_process(pid: int) -> str:
    """``pid 123 (parity serve)``: the Parity command a process runs, without its arguments."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in argv if a]
    for i, word in enumerate(words):
        if Path(word).name == "parity" or word.endswith("parity.cli"):
            # Sub-command names only: an argument (an NHS number, a path) never reaches a message.
            sub = [w for w in words[i + 1:i + 3] if re.fullmatch(r"[a-z][a-z-]*", w)]
            return f"pid {pid} ({' '.join(['parity', *sub])})"
    return f"pid {pid}"


def _holder_of_writer_lock(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another process"
    return describe_process(int(text)) if text.isdigit() else "another process"


def busy_message(file: Path, exc: BaseException | None, *, writing: bool) -> str:
    """Why ``file`` could not be opened, who holds it and what to do (no data, no arguments)."""
    m = _PID.search(str(exc)) if exc is not None else None
    holder = describe_process(int(m.group(1))) if m else "another process"
    if writing:
        what = ("stop it to make this change from the command line, make it in the web app, or use "
                "PostgreSQL for several writers" if "serve" in holder else "wait for it to finish and try again")
        return f"the DuckDB database {file} is open in {holder}, so it cannot be written now; {what}"
    return f"the DuckDB database {file} is being written by {holder}; wait for it to finish and try again"


def _held_by_server(exc: BaseException) -> bool:
    m = _PID.search(str(exc))
    return m is not None and int(m.group(1)) != os.getpid() and "parity serve" in describe_process(int(m.group(1)))


def _is_lock_conflict(exc: BaseException) -> bool:
    return "lock" in str(exc).lower() and type(exc).__name__ == "IOException"


class SharedFile:
    """A DuckDB file attached, read-only between writes, to one in-memory DuckDB of this process.

    DuckDB attaches a file once per process, so every ``Database`` this process opens on the file
    shares this object: one root connection owns the attach, each ``Database`` gets a cursor of it
    (``connect``) and the same ``lock`` (an attach or detach must not run while another cursor queries).
    """

    def __init__(self, file: Path, *, wait: float | None = None) -> None:
        import duckdb

        self.file = file
        self.lock_file = lock_path(file)
        self.wait = wait_seconds() if wait is None else wait
        self.mode: str | None = None  # "ro", "rw" or None (detached)
        self.lock = threading.RLock()
        self._root = duckdb.connect(":memory:")
        self._cursors: list[Any] = []
        self._ident: tuple[int, int] | None = None
        # A server keeps the file attached for writing between writes (``make_sticky``) until another
        # process asks (``ask_to_yield``); ``_hold`` is its shared writer lock meanwhile.
        self.sticky = False
        self._hold: int | None = None
        self._yield_until = 0.0
        self._want_seen = 0.0
        self._stop = threading.Event()

    @property
    def raw(self) -> Any:
        return self._root

    # -- sharing within the process ------------------------------------------------------------
    def connect(self) -> Any:
        """A new cursor on the attached file, for one ``Database`` (``release`` it when done)."""
        with self.lock:
            cur = self._root.cursor()
            if self.mode is not None:
                cur.execute(f"USE {ALIAS}")
            self._cursors.append(cur)
            return cur

    def release(self, cur: Any) -> None:
        """Forget ``cur``; the last one detaches the file and closes the root connection."""
        with self.lock:
            with contextlib.suppress(ValueError):
                self._cursors.remove(cur)
            with contextlib.suppress(Exception):
                cur.close()
            if not self._cursors:
                self._stop.set()
                with contextlib.suppress(Exception):
                    self.detach()
                if self._hold is not None:
                    os.close(self._hold)
                    self._hold = None
                with contextlib.suppress(Exception):
                    self._root.close()
                if _OPEN.get(str(self.file)) is self:
                    del _OPEN[str(self.file)]

    # -- attach / detach ------------------------------------------------------------------
    def attach(self, *, read_only: bool) -> None:
        """Attach the file (waiting while another process writes it) as every cursor's default catalog."""
        literal = str(self.file).replace("'", "''")
        sql = f"ATTACH '{literal}' AS {ALIAS}" + (" (READ_ONLY)" if read_only else "")
        deadline = time.monotonic() + self.wait
        recovered = False
        with self.lock:
            while True:
                before = _ident(self.file)
                try:
                    self._root.execute(sql)
                except Exception as exc:
                    if read_only and not recovered and not _is_lock_conflict(exc) and not self.checkpoint_not_needed():
                        # A writer killed mid-write left a log that only a writing attach can replay (one
                        # holding an index build, for one): fold it in, then attach read-only again.
                        recovered = True
                        with contextlib.suppress(Exception):
                            self._root.execute(f"ATTACH '{literal}' AS {ALIAS}")
                            self._root.execute(f"DETACH {ALIAS}")
                        continue
                    if not _is_lock_conflict(exc):
                        raise DatabaseError(f"cannot open DuckDB database {self.file}: "
                                            f"{type(exc).__name__}") from None
                    # A server holds the file read-only for as long as it runs: waiting would not help.
                    if time.monotonic() >= deadline or (not read_only and _held_by_server(exc)):
                        raise DatabaseError(busy_message(self.file, exc, writing=not read_only)) from None
                    if read_only and not self.sticky:
                        ask_to_yield(self.file)  # a server keeping it for writing lets readers in
                    time.sleep(_POLL_SECONDS)
                    continue
                if _ident(self.file) == before:
                    break
                self._root.execute(f"DETACH {ALIAS}")  # replaced while attaching: attach the new one
            for con in (self._root, *self._cursors):
                con.execute(f"USE {ALIAS}")
            self.mode = "ro" if read_only else "rw"
            self._ident = before

    def detach(self) -> None:
        with self.lock:
            if self.mode is None:
                return
            for con in (self._root, *self._cursors):
                con.execute("USE memory")
            self._root.execute(f"DETACH {ALIAS}")  # checkpoints a writing attach: no WAL is left behind
            self.mode = None

    # -- following a load --------------------------------------------------------------------
    def replaced(self) -> bool:
        """True when a load has renamed a new file in since this one was attached."""
        return self.mode == "ro" and _ident(self.file) != self._ident

    def follow(self) -> bool:
        """Move to the new file once a load has renamed it in *and finished* (its writer lock is free);
        True if moved. Cheap when nothing changed (one ``stat``)."""
        if not self.replaced():
            return False
        with self.lock, _writer_lock(self.lock_file, exclusive=False, wait=0.0) as got:
            if not got:
                return False  # the load is still precomputing: keep the old data until it is done
            self.detach()
            self.attach(read_only=True)
        return True

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the file for writing for the block (nested blocks join the outer one)."""
        if self.mode == "rw":
            yield
            return
        with self.lock:
            loader = str(self.lock_file) in _EXCLUSIVE
            fd = None if loader else _acquire(self.lock_file, exclusive=False, wait=self.wait)
            if fd is None and not loader:
                raise DatabaseError(f"the DuckDB database {self.file} is being replaced by "
                                    f"{_holder_of_writer_lock(self.lock_file)}; wait for it to finish and try again")
            try:
                self.detach()
                try:
                    self.attach(read_only=False)
                except BaseException:
                    self.attach(read_only=True)
                    raise
                try:
                    yield
                finally:
                    if loader:
                        pass  # a load keeps it until ``loading`` ends: its precompute writes hundreds of results
                    elif self.sticky and time.monotonic() >= self._yield_until:
                        self._hold, fd = fd, None  # a server keeps it: its next write costs nothing extra
                    else:
                        self.detach()
                        self.attach(read_only=True)
            finally:
                if fd is not None:
                    os.close(fd)

    # -- a server keeps the file for writing -----------------------------------------------------
    def make_sticky(self) -> None:
        """Keep the file attached for writing between writes (a server: its audit entries then cost a
        statement, not two re-attaches) until another process asks; a thread watches for that."""
        if self.sticky:
            return
        self.sticky = True
        self._want_seen = _mtime(want_path(self.file))
        threading.Thread(target=self._watch, name="parity-duckdb-yield", daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            seen = _mtime(want_path(self.file))
            if seen > self._want_seen:
                self._want_seen = seen
                self.yield_to_others()

    def yield_to_others(self, seconds: float = YIELD_SECONDS) -> None:
        """Attach read-only and release the writer lock; write without keeping it for ``seconds``."""
        with self.lock:
            self._yield_until = time.monotonic() + seconds
            if self._hold is None:
                return
            try:
                if self.mode == "rw":
                    self.detach()  # checkpoints: another process may now copy or read the file
                    self.attach(read_only=True)
            finally:
                os.close(self._hold)
                self._hold = None

    def downgrade(self) -> None:
        """Attach read-only again if attached for writing."""
        with self.lock:
            if self.mode == "rw":
                self.detach()
                self.attach(read_only=True)

    def checkpoint_not_needed(self) -> bool:
        """True when the file has no write-ahead log (every writing attach ends with a checkpoint)."""
        wal = self.file.with_name(self.file.name + ".wal")
        return not wal.exists() or wal.stat().st_size == 0



def _acquire(path: Path, *, exclusive: bool, wait: float, on_wait: Callable[[], None] | None = None) -> int | None:
    """An open ``path`` holding its ``flock`` (close it to release), or None if not got within ``wait`` s."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            if on_wait is not None:
                on_wait()
            time.sleep(_POLL_SECONDS)


@contextlib.contextmanager
def _writer_lock(path: Path, *, exclusive: bool, wait: float,
                 on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """``flock`` on ``path`` for the block; yields False if not got within ``wait`` seconds."""
    if str(path) in _EXCLUSIVE:  # this process is the loader: its own writes go ahead
        yield True
        return
    fd = _acquire(path, exclusive=exclusive, wait=wait, on_wait=on_wait)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock


def want_path(file: Path) -> Path:
    """Touched by a process that waits for a server holding ``file`` for writing (``SharedFile.sticky``)."""
    return file.with_name(file.name + ".want")


def ask_to_yield(file: Path) -> None:
    """Ask a server that keeps ``file`` attached for writing to attach it read-only (it checks every 0.1 s)."""
    with contextlib.suppress(OSError):
        want_path(file).touch()


def may_discard_rewrite(file: Path) -> bool:
    """True if no load is building a copy of ``file`` now (so a leftover copy is a crashed load's)."""
    if str(lock_path(file)) in _EXCLUSIVE:
        return True
    with _writer_lock(lock_path(file), exclusive=True, wait=0.0) as got:
        return got


@contextlib.contextmanager
def replacing(file: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold ``file``'s writer lock exclusively for a whole load (copy, build, rename, precompute).

    In-place writers (a server's audit log, another command) wait meanwhile; readers carry on with
    the old file and move to the new one when the block ends. A second load waits, then fails with
    a message naming the first.
    """
    path = lock_path(file)
    key = str(path)
    if key in _EXCLUSIVE:
        yield
        return
    limit = wait_seconds() if wait is None else wait
    with _writer_lock(path, exclusive=True, wait=limit, on_wait=lambda: ask_to_yield(file)) as got:
        if not got:
            raise DatabaseError(f"the DuckDB database {file} is being written by {_holder_of_writer_lock(path)}; "
                                "wait for it to finish and try again")
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())  # who holds it, for other processes' messages
        finally:
            os.close(fd)
        _EXCLUSIVE[key] = 1
        try:
            yield
        finally:
            del _EXCLUSIVE[key]


@contextlib.contextmanager
def loading(db: Any) -> Iterator[None]:
    """``replacing`` for an open ``Database`` on a shared DuckDB file (nothing to hold otherwise):
    wrap a whole ``parity load`` (and its precompute) in it."""
    shared = getattr(db, "shared", None)
    if shared is None:
        yield
        return
    with replacing(shared.file):
        try:
            yield
        finally:
            current = getattr(db, "shared", None)  # a load reconnects ``db`` to the new file
            if current is not None:
                current.downgrade()
