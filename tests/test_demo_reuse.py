"""`make demo` a second time reuses the built data; `make serve` serves what is there; PORT= is honoured;
long steps print progress lines when stderr is not a terminal (issue 16, target 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from parity.db import open_database
from parity.demo import demo_recipe, reusable_demo, write_demo_marker
from parity.ingest import load_extract
from parity.ingest.progress import Progress
from parity.orgs import structure_in_force
from parity.synth import generate

ROOT = Path(__file__).resolve().parents[1]
TODAY = "2026-07-15"
DAY = date(2026, 6, 30)  # the latest quarter end before TODAY: the demo's reporting date


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-extract")
    generate(folder, scale="practice", area="J82155", patients=60, seed=3, as_of=DAY, fmt="csv",
             structure=structure_in_force(DAY))
    return folder


def _demo_dir(tmp_path: Path, small: Path, seed: int = 42) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with open_database(str(data / "parity.duckdb")) as db:
        load_extract(db, small)
        write_demo_marker(db, data / "demo.json", demo_recipe(seed, DAY, structure_in_force(DAY)))
    return data


def test_a_marker_is_reused_only_for_the_same_recipe_and_the_same_data(tmp_path, small):
    data = _demo_dir(tmp_path, small)
    recipe = demo_recipe(42, DAY, structure_in_force(DAY))
    with open_database(str(data / "parity.duckdb"), create=False) as db:
        assert reusable_demo(db, data / "demo.json", recipe) is not None
        assert reusable_demo(db, data / "demo.json", demo_recipe(7, DAY, structure_in_force(DAY))) is None
        assert reusable_demo(db, data / "demo.json", demo_recipe(42, date(2026, 3, 31), "2022-23")) is None
        assert reusable_demo(db, tmp_path / "missing.json", recipe) is None
        # A check filed from MESH while the demo serves changes the data version, not the demo's extract.
        db.execute("INSERT INTO loads (load_id, loaded_at, source, mode, patients, registrations, events, "
                   "medications, warnings) VALUES ('filed-1', now()::TIMESTAMP, 'mesh:m1', 'mesh', 0, 0, 1, 0, 0)")
        assert reusable_demo(db, data / "demo.json", recipe) is not None
        load_extract(db, small, mode="replace")  # another load since the build: not the demo's data
        assert reusable_demo(db, data / "demo.json", recipe) is None
    (data / "demo.json").write_text("{not json")
    with open_database(str(data / "parity.duckdb"), create=False) as db:
        assert reusable_demo(db, data / "demo.json", recipe) is None


def test_parity_demo_a_second_time_reuses_the_data_and_builds_nothing(tmp_path, small):
    data = _demo_dir(tmp_path, small)
    env = {**os.environ, "PARITY_TODAY": TODAY}
    env.pop("PARITY_DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "parity.cli", "demo", "--no-serve", "--data-dir", str(data)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "Reusing the demo built" in r.stdout
    assert not (data / "demo-extract").exists()  # nothing synthesised
    assert "demo: 1/4" not in r.stderr and "load:" not in r.stderr  # nothing loaded
    assert "practice           parity-demo-2026" in r.stdout  # the sign-ins are listed again


def test_progress_lines_when_stderr_is_not_a_terminal(capsys):
    with Progress(True) as prog, prog.stage("write events") as stage:
        stage.done("write events: 12 rows")
    err = capsys.readouterr().err
    assert "load: write events …" in err
    assert "load: write events: 12 rows (" in err


@pytest.mark.parametrize("target", ["demo", "serve"])
def test_make_honours_port(target):
    r = subprocess.run(["make", "-n", target, "PORT=8123"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    if target == "demo":
        assert "PORT=8123" in r.stdout and "scripts/demo_mesh.sh" in r.stdout
        script = (ROOT / "scripts" / "demo_mesh.sh").read_text()
        assert '--port "$PORT"' in script  # the script serves on it
    else:
        assert "parity serve --database parity-data/parity.duckdb --port 8123" in r.stdout
