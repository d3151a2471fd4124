"""Finding 10 (issue 12): database URLs parsed once by the usual convention, secrets in the data
directory with mode 0600, and an unknown command answered with usage, not "unexpected UsageError"."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from parity.db import open_database
from parity.db.url import parse_database_url
from parity.errors import ConfigurationError
from parity.settings import Settings

from .world import run_cli


@pytest.mark.parametrize(("url", "path"), [
    ("duckdb:////abs/path/x.duckdb", "/abs/path/x.duckdb"),
    ("duckdb:///rel/x.duckdb", "rel/x.duckdb"),
    ("duckdb://:memory:", ":memory:"),
    (":memory:", ":memory:"),
    ("./parity-data/parity.duckdb", "./parity-data/parity.duckdb"),
    ("/srv/parity/parity.duckdb", "/srv/parity/parity.duckdb"),
])
def test_duckdb_urls_follow_the_sqlalchemy_convention(url, path):
    parsed = parse_database_url(url)
    assert (parsed.kind, parsed.path) == ("duckdb", path)


def test_postgres_url_parts():
    parsed = parse_database_url("postgresql+psycopg://parity@127.0.0.1:5432/db?options=-csearch_path%3Dward")
    assert (parsed.kind, parsed.schema) == ("postgres", "ward")
    assert parsed.conninfo.startswith("postgresql://")
    with pytest.raises(ConfigurationError):
        parse_database_url("mysql://x@y/z")


def test_absolute_duckdb_url_opens_the_absolute_file_and_keeps_the_key_beside_it(tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    target = tmp_path / "data" / "x.duckdb"
    url = f"duckdb:///{target}"  # four slashes: an absolute path
    assert url.startswith("duckdb:////")
    open_database(url).close()
    assert target.is_file()
    settings = Settings.from_env({}, database=url).with_secret_key()
    key = target.parent / "secret.key"
    assert key.read_text().strip() == settings.secret_key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert list(work.iterdir()) == [], "nothing may be written under the working directory"


def test_an_existing_key_readable_by_others_is_tightened(tmp_path):
    key = tmp_path / "secret.key"
    key.write_text("k" * 48)
    key.chmod(0o644)
    Settings.from_env({}, database=str(tmp_path / "p.duckdb")).with_secret_key()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_unknown_command_prints_usage(capsys):
    code, output = run_cli(capsys, "no-such-command")
    assert code == 2
    assert "Usage: parity" in output and "No such command" in output
    assert "unexpected" not in output


def test_unknown_option_prints_usage(capsys, tmp_path: Path):
    code, output = run_cli(capsys, "load", str(tmp_path), "--no-such-option")
    assert code == 2
    assert "No such option" in output and "unexpected" not in output
