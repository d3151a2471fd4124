"""Load benchmark (issue 16 target 2): the England extract into a new DuckDB file, against a plain-copy floor.

Each step runs as its own process, timed from outside, with the peak resident memory of its whole process tree
(sampled every 20 ms with psutil; DuckDB allocates inside the process, so its memory is included):

- **load to commit**: ``parity.ingest.load_extract`` alone (what ``parity load`` runs first: every check, the
  write, the commit and the rename of the finished file), in a fresh interpreter;
- **whole ``parity load``**: the command as a user runs it, with what follows the commit (tables for
  commands beside a server, the patient indexes, and the dashboard's precomputed results unless
  ``--no-precompute`` is passed here);
- **floor**: plain DuckDB, ``CREATE TABLE … AS SELECT * FROM read_parquet(…)`` of the same four files into a
  new file, no checks, DuckDB's default settings: what reading and storing the data costs at least.

Targets: ≥ 2 million events/s (events in the extract ÷ median seconds) and peak memory ≤ 2 GB. Both the load to
commit (what the target is about: a load that is checked, all or nothing) and the whole command are reported
against them. Every step loads the same extract and their row counts are checked equal.

Usage: ``python benchmarks/load.py [--quick] [--repeats N] [--no-precompute]``; writes the section between
``<!-- load:start -->`` and ``<!-- load:end -->`` of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import DEFAULT_AS_OF, extract_for, synth_version  # noqa: E402
from web_load import write_section  # noqa: E402

START_MARK = "<!-- load:start -->"
END_MARK = "<!-- load:end -->"
GB = 1000**3  # decimal, as DuckDB's memory_limit counts; stricter than GiB
TARGET_EVENTS_PER_S = 2_000_000
TARGET_PEAK_BYTES = 2 * GB
TABLES = ("patients", "registrations", "events", "medications")

# Load to commit, then what `parity load` does next before its precompute, in a fresh interpreter, each phase
# timed and its peak RSS sampled in the process (DuckDB's memory included). argv = benchmarks folder, extract
# folder, database file. Prints the counts and phases as JSON.
LOAD_PROPER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from _rss import RssSampler, maxrss_bytes
phases = {}
with RssSampler(0.02) as rss:
    def phase(name, started, cpu):
        phases[name] = [time.perf_counter() - started, time.process_time() - cpu, rss.phases[name]]
    t, c = time.perf_counter(), time.process_time()
    with rss.phase("load"):
        from parity.db import open_database
        from parity.ingest import load_extract
        db = open_database(sys.argv[3])
        result = load_extract(db, Path(sys.argv[2]), mode="replace")
    phase("load", t, c)
    t, c = time.perf_counter(), time.process_time()
    with rss.phase("indexes"):
        from parity.access.grant import create_all_tables
        from parity.db.indexes import ensure_patient_indexes
        create_all_tables(db)
        ensure_patient_indexes(db)
    phase("indexes", t, c)
    db.close()
phases["indexes"][2] = max(phases["indexes"][2], maxrss_bytes())
print(json.dumps({"counts": result.counts, "phases": phases}))
"""

# The floor: plain DuckDB, no checks. argv = extract folder, database file.
FLOOR = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[2])
counts = {}
for t in ("patients", "registrations", "events", "medications"):
    path = f"{sys.argv[1]}/{t}.parquet".replace("'", "''")
    con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{path}')")
    counts[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
con.execute("CHECKPOINT")
con.close()
print(json.dumps(counts))
"""


def log(msg: str) -> None:
    """A progress line on stderr with the time."""
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """One timed process: wall seconds, CPU seconds of the tree, peak RSS of the tree, row counts."""

    seconds: float
    cpu: float
    peak: int
    counts: dict[str, int]
    phases: dict[str, list[float]] = field(default_factory=dict)  # name -> [seconds, CPU seconds, peak RSS]


@dataclass
class Step:
    """Repeated runs of one step."""

    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def peak(self) -> int:
        return int(statistics.median(r.peak for r in self.runs))

    @property
    def max_peak(self) -> int:
        return max(r.peak for r in self.runs)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def timed(cmd: list[str], env: dict[str, str]) -> Run:
    """Run ``cmd``; its wall time, the CPU and peak summed RSS of its process tree, and its JSON output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            total = 0
            for p in _tree(ps):
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            peak = max(peak, total)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} … failed ({proc.returncode}):\n{err[-3000:]}")
    # The tree's CPU, from the kernel once the child is reaped (its own reaped children included).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    counts, phases = _output(out)
    return Run(seconds, cpu, peak, counts, phases)


def _output(out: str) -> tuple[dict[str, int], dict[str, list[float]]]:
    """Row counts (and phases) from a step's output: JSON from the scripts here, a sentence from ``parity load``."""
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            data = json.loads(line)
            counts = data.get("counts", data)
            return {k: int(v) for k, v in counts.items()}, data.get("phases", {})
    if line := next((x for x in out.splitlines() if x.startswith("loaded ")), None):
        # "loaded FOLDER (718,093 patients, …)"
        inner = line.rsplit("(", 1)[1].rstrip(")")
        return {part.split()[1]: int(part.split()[0].replace(",", "")) for part in inner.split(", ")}, {}
    return {}, {}


def fresh(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".rewrite"),
              path.with_name(path.name + ".tmp")):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Step]:
    """Every step, ``args.repeats`` times each, interleaved so a busy spell of the machine hits them alike."""
    work = args.workdir / "load-bench"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop("PARITY_DATABASE_URL", None)
    python = sys.executable
    parity = str(Path(sys.executable).with_name("parity"))
    steps = {k: Step(k) for k in ("floor", "proper", "whole")}
    for i in range(args.repeats):
        for key in steps:
            db = work / f"{key}.duckdb"
            fresh(db)
            if key == "floor":
                cmd = [python, "-c", FLOOR, str(folder), str(db)]
            elif key == "proper":
                cmd = [python, "-c", LOAD_PROPER, str(HERE), str(folder), str(db)]
            else:
                cmd = [parity, "load", str(folder), "--database", str(db)]
                if not args.precompute:
                    cmd.append("--no-precompute")
            log(f"run {i + 1}/{args.repeats}: {key}")
            run = timed(cmd, env)
            steps[key].runs.append(run)
            log(f"  {run.seconds:.1f} s, CPU {run.cpu:.1f} s, peak {run.peak / GB:.2f} GB, {run.counts}")
            fresh(db)
    return steps


def verdict(ok: bool, text: str) -> str:
    return "PASS" if ok else f"**MISS**: {text}"


def render(args: argparse.Namespace, folder: Path, steps: dict[str, Step], counts: dict[str, int]) -> str:
    events = counts["events"]
    rows = sum(counts.values())
    floor, proper, whole = steps["floor"], steps["load"], steps["whole"]
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=False).stdout.strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    lines = [
        START_MARK,
        "## Load (issue 16 target 2)",
        "",
        f"Generated by `python benchmarks/load.py{' --quick' if args.quick else ''}"
        f"{'' if args.precompute else ' --no-precompute'}` on {when}, "
        f"git commit `{commit}`. England extract (seed {args.seed}, {DEFAULT_AS_OF}, Parquet): "
        f"{events:,} events, {rows:,} rows in all ({', '.join(f'{counts[t]:,} {t}' for t in TABLES)}). "
        f"Each step is its own process into a new DuckDB file, timed from outside, peak = resident memory of its "
        f"process tree (incl. DuckDB) sampled every 20 ms; the load to commit and the indexes are phases of one "
        f"process, timed and sampled inside it. Median of {args.repeats} run(s), steps interleaved. "
        f"Machine: {os.cpu_count()} cores, {platform.python_version()}, load average at the end {load}.",
        "",
        "| target | figure (median) | baseline, same run | result |",
        "|---|---|---|---|",
    ]

    def rate(step: Step) -> float:
        return events / step.seconds

    for label, step in (("`load_extract` to commit: events/s", proper), ("whole `parity load`: events/s", whole)):
        r = rate(step)
        lines.append(f"| {label} | {r / 1e6:.2f} M/s ({step.seconds:.1f} s) | floor {rate(floor) / 1e6:.2f} M/s "
                     f"({floor.seconds:.1f} s); Parity takes {step.seconds / floor.seconds:.2f}× the floor's time | "
                     + verdict(r >= TARGET_EVENTS_PER_S, f"{r / 1e6:.2f} M/s vs ≥ 2 M/s "
                               f"(needs ≤ {events / TARGET_EVENTS_PER_S:.1f} s)") + " |")
    for label, step in (("`load_extract` to commit: peak memory", proper), ("whole `parity load`: peak memory", whole)):
        lines.append(f"| {label} | {step.peak / GB:.2f} GB (max {step.max_peak / GB:.2f} GB) | floor "
                     f"{floor.peak / GB:.2f} GB | " + verdict(step.max_peak <= TARGET_PEAK_BYTES,
                                                              f"{step.max_peak / GB:.2f} GB vs ≤ 2 GB") + " |")
    lines += [
        "",
        "| step | runs (s) | median | CPU (median) | peak RSS (median) | rows/s (all tables) |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "floor": "floor: DuckDB `CREATE TABLE AS SELECT * FROM read_parquet`, no checks (process)",
        "load": "`load_extract` to commit: open, checks, write, commit, checkpoint, rename (in process)",
        "indexes": "then tables for commands beside a server + patient indexes (in process)",
        "proper": "that process, from start to exit",
        "whole": "whole `parity load`" + ("" if args.precompute else " --no-precompute") + " (process)",
    }
    for key in ("floor", "load", "indexes", "proper", "whole"):
        s = steps[key]
        lines.append(f"| {names[key]} | {', '.join(f'{r.seconds:.1f}' for r in s.runs)} | {s.seconds:.1f} s | "
                     f"{s.cpu:.1f} s | {s.peak / GB:.2f} GB | {rows / s.seconds / 1e6:.2f} M/s |")
    rest = whole.seconds - proper.seconds - steps["indexes"].seconds
    lines += [
        "",
        f"Split of the whole command: load to commit {proper.seconds:.1f} s, peak {proper.peak / GB:.2f} GB; tables "
        f"and patient indexes (`parity.db.indexes`, DuckDB capped at 2 GB there) {steps['indexes'].seconds:.1f} s, "
        f"peak {steps['indexes'].peak / GB:.2f} GB; "
        + (f"the dashboard's precompute and the rest about {rest:.1f} s (whole median − the two), its peak is "
           f"the whole command's when that is higher. " if args.precompute else f"the rest {rest:.1f} s. ")
        + "The target is read on the load to commit (a checked, all-or-nothing load); the whole command is shown "
        "beside it. The row counts of every run equal the floor's.",
        END_MARK,
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Load benchmark (writes a section of benchmarks/RESULTS.md).")
    p.add_argument("--repeats", type=int, default=3, help="runs of each step (default 3)")
    p.add_argument("--quick", action="store_true", help="one run of each step")
    p.add_argument("--no-precompute", dest="precompute", action="store_false",
                   help="time the whole command with --no-precompute")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", type=Path, default=HERE / "work")
    p.add_argument("--fresh", action="store_true", help="regenerate the extract even if a matching one exists")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="Markdown file to update")
    p.add_argument("--extract", type=Path, default=None, help="load this extract folder instead (trying the script)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 1
    args.workdir = args.workdir.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    # The same parameters (and so the same cached folder) as benchmarks/run.py's England extract.
    params = {"scale": "england", "area": None, "patients": None, "seed": args.seed,
              "as_of": DEFAULT_AS_OF.isoformat(), "structure": "2022-23", "noise": 1.0,
              "synth_version": synth_version()}
    folder = args.extract.resolve() if args.extract else extract_for(params, args.workdir, args.fresh)[0]
    steps = measure(args, folder)
    for phase in ("load", "indexes"):
        steps[phase] = Step(phase, [Run(r.phases[phase][0], r.phases[phase][1], int(r.phases[phase][2]), r.counts)
                                    for r in steps["proper"].runs])
    counts = steps["floor"].runs[0].counts
    for step in steps.values():
        for run in step.runs:
            if run.counts != counts:
                raise SystemExit(f"{step.name}: row counts {run.counts} differ from the floor's {counts}")
    section = render(args, folder, steps, counts)
    write_section(args.out, section, START_MARK, END_MARK)
    print(section)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
