"""The MESH file: secrets from the environment, clear refusals, the practice directory, the demo's sandbox file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from parity.errors import ConfigurationError
from parity.interop.mesh import load_mesh_config, parse_mesh_config

GOOD = {"url": "https://msg.intspineservices.nhs.uk", "shared_key_env": "KEY",
        "mailboxes": [{"mailbox": "rx2ot001", "ods": "rx2", "password_env": "PW"}],
        "directory": {"j82155": "j82155ot001"}}
ENV = {"KEY": "shared-secret", "PW": "mailbox-secret"}


def test_secrets_come_from_the_environment_and_codes_are_upper_case() -> None:
    config = parse_mesh_config(GOOD, ENV)
    assert config.shared_key == b"shared-secret"
    assert config.mailbox_for("RX2").password == "mailbox-secret"
    assert config.recipient("j82155") == "J82155OT001" and config.recipient("A81001") is None
    assert (config.workflow_id, config.max_attempts, config.backoff_seconds) == ("PARITY_SMI_PHC", 5, 60.0)
    assert "mailbox-secret" not in repr(config) and "shared-secret" not in repr(config)


@pytest.mark.parametrize(("change", "message"), [
    ({"url": "msg.intspineservices.nhs.uk"}, "url must be"),
    ({"mailboxes": []}, "at least one [[mailboxes]]"),
    ({"mailboxes": [{"mailbox": "RX2OT001", "ods": "RX2"}]}, "password_env"),
    ({"mailboxes": [{"mailbox": "RX2OT001", "ods": "RX2", "password_env": "MISSING"}]}, "MISSING is not set"),
    ({"directory": {"J82155": "not a mailbox"}}, "directory entry J82155"),
    ({"max_attempts": 0}, "max_attempts must be at least 1"),
    ({"workflow_id": "HAS SPACES"}, "workflow_id"),
])
def test_incomplete_files_are_refused_with_the_reason(change: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=None) as err:
        parse_mesh_config({**GOOD, **change}, ENV)
    assert message in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_mesh_config(tmp_path / "mesh.toml")


def test_the_demo_writes_a_sandbox_file_for_its_trust_and_practice(tmp_path: Path, duckdb_db) -> None:
    from parity.demo import _busiest_practice, _busiest_trust, write_sandbox_mesh_config
    from parity.ingest import load_extract
    from parity.synth import generate

    as_of = date(2026, 9, 30)
    generate(tmp_path / "x", scale="practice", area="J82155", seed=3, as_of=as_of, fmt="parquet",
             structure="2022-23")
    load_extract(duckdb_db, tmp_path / "x")
    path = write_sandbox_mesh_config(duckdb_db, as_of, tmp_path / "mesh-sandbox.toml")
    assert path is not None
    config = load_mesh_config(path, env={})
    practice = _busiest_practice(duckdb_db)[0]
    assert config.mailbox_for(_busiest_trust(duckdb_db, as_of) or "").mailbox == "X26ABC1"
    assert config.recipient(practice) == "X26ABC2" and config.mailbox_for(practice).mailbox == "X26ABC2"
