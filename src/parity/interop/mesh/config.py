"""MESH configuration: the MESH server, the mailboxes this Parity owns, and the practice directory.

One TOML file (``PARITY_MESH_CONFIG``), read once by the CLI or app factory and passed down:

```toml
url = "https://msg.intspineservices.nhs.uk"     # MESH (INT here); the tests use NHS Digital's mesh-sandbox
shared_key_env = "PARITY_MESH_SHARED_KEY"         # the environment's HMAC shared key, never in the file
workflow_id = "PARITY_SMI_PHC"                    # workflow of the check message (Bundle with the letter)
ca_cert = "/etc/parity/mesh-ca.pem"               # optional: server CA; client_cert/client_key for mutual TLS
max_attempts = 5                                  # send attempts before an outbox entry is failed
backoff_seconds = 60                              # first retry delay; doubles per attempt
lookup = false                                    # ask MESH endpoint lookup for practices not in [directory]
send_document_addressing = "gpprovider"           # Send Document to GPPROVIDER_<NHS no>_<DOB>_<surname> (MESH
                                                  # finds the registered practice); "directory" for sandboxes

[[mailboxes]]                                     # mailboxes of this deployment (a trust's, a practice's)
mailbox = "X26ABC1"
ods = "RX2"
password_env = "PARITY_MESH_PASSWORD_X26ABC1"

[directory]                                       # practice ODS code -> its MESH mailbox
J82155 = "X26ABC2"
```

Passwords and the shared key come from the environment (named by ``password_env``/``shared_key_env``)
so the file can be committed to configuration management; ``password``/``shared_key`` in the file are
accepted for sandboxes only. No national MESH workflow lets a mental-health trust send coded
results to a GP system today (interop-and-peers.md §2.2), so the workflow ID is a locally agreed
one and configurable.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from parity.errors import ConfigurationError

DEFAULT_WORKFLOW = "PARITY_SMI_PHC"
MAILBOX_ID = re.compile(r"^[A-Z0-9]{3,20}$")
ODS = re.compile(r"^[A-Z0-9]{3,10}$")


@dataclass(frozen=True)
class Mailbox:
    """A MESH mailbox this deployment signs in to, and the organisation (ODS code) that owns it."""

    mailbox: str
    ods: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class MeshConfig:
    """Everything needed to talk to MESH; ``directory`` maps practice ODS codes to mailboxes."""

    url: str
    shared_key: bytes = field(repr=False)
    mailboxes: tuple[Mailbox, ...]
    directory: Mapping[str, str]
    workflow_id: str = DEFAULT_WORKFLOW
    max_attempts: int = 5
    backoff_seconds: float = 60.0
    lookup: bool = False
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 60.0
    send_document_addressing: str = "gpprovider"

    def mailbox_for(self, ods: str) -> Mailbox:
        """The (first) mailbox this deployment owns for organisation ``ods``."""
        for m in self.mailboxes:
            if m.ods == ods.upper():
                return m
        raise ConfigurationError(f"no MESH mailbox is configured for organisation {ods}")

    def owned(self, mailbox: str) -> Mailbox:
        for m in self.mailboxes:
            if m.mailbox == mailbox.upper():
                return m
        raise ConfigurationError(f"MESH mailbox {mailbox} is not configured")

    def recipient(self, practice_ods: str) -> str | None:
        """The practice's mailbox from the directory, or None (then endpoint lookup, if enabled)."""
        return self.directory.get(practice_ods.upper())

    @property
    def verify(self) -> str | bool:
        return self.ca_cert or True

    @property
    def cert(self) -> tuple[str, str] | None:
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return None


def _secret(raw: Mapping[str, object], key: str, env: Mapping[str, str], where: str) -> str:
    name = raw.get(f"{key}_env")
    if name:
        value = env.get(str(name))
        if not value:
            raise ConfigurationError(f"{where}: environment variable {name} is not set")
        return value
    value = raw.get(key)
    if not value:
        raise ConfigurationError(f"{where}: give {key}_env (the environment variable holding the {key})")
    return str(value)


def parse_mesh_config(raw: Mapping[str, object], env: Mapping[str, str] | None = None,
                      where: str = "MESH configuration") -> MeshConfig:
    """Build a ``MeshConfig`` from parsed TOML, refusing anything incomplete with ``ConfigurationError``."""
    env = os.environ if env is None else env
    url = str(raw.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}: url must be the MESH server's http(s) address")
    mailboxes = []
    for i, m in enumerate(raw.get("mailboxes") or []):  # type: ignore[union-attr]
        here = f"{where}: mailboxes[{i}]"
        mid, ods = str(m.get("mailbox", "")).upper(), str(m.get("ods", "")).upper()
        if not MAILBOX_ID.match(mid) or not ODS.match(ods):
            raise ConfigurationError(f"{here}: needs a mailbox id and the ODS code that owns it")
        mailboxes.append(Mailbox(mid, ods, _secret(m, "password", env, here)))
    if not mailboxes:
        raise ConfigurationError(f"{where}: at least one [[mailboxes]] entry is needed")
    directory = {}
    for ods, mailbox in dict(raw.get("directory") or {}).items():  # type: ignore[call-overload]
        if not ODS.match(str(ods).upper()) or not MAILBOX_ID.match(str(mailbox).upper()):
            raise ConfigurationError(f"{where}: directory entry {ods} is not 'ODS = \"MAILBOX\"'")
        directory[str(ods).upper()] = str(mailbox).upper()
    try:
        attempts = int(raw.get("max_attempts", 5))  # type: ignore[arg-type]
        backoff = float(raw.get("backoff_seconds", 60))  # type: ignore[arg-type]
        timeout = float(raw.get("timeout_seconds", 60))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: max_attempts, backoff_seconds and timeout_seconds are numbers") from None
    if attempts < 1 or backoff < 0:
        raise ConfigurationError(f"{where}: max_attempts must be at least 1 and backoff_seconds not negative")
    workflow = str(raw.get("workflow_id") or DEFAULT_WORKFLOW)
    if len(workflow) > 300 or not re.fullmatch(r"[A-Za-z0-9_]+", workflow):
        raise ConfigurationError(f"{where}: workflow_id must be letters, digits and _ (at most 300)")
    addressing = str(raw.get("send_document_addressing") or "gpprovider")
    if addressing not in ("gpprovider", "directory"):
        raise ConfigurationError(f"{where}: send_document_addressing must be gpprovider or directory")
    return MeshConfig(
        url=url.rstrip("/"), send_document_addressing=addressing,
        shared_key=_secret(raw, "shared_key", env, where).encode(),
        mailboxes=tuple(mailboxes), directory=directory, workflow_id=workflow,
        max_attempts=attempts, backoff_seconds=backoff, lookup=bool(raw.get("lookup", False)),
        ca_cert=_opt(raw, "ca_cert"), client_cert=_opt(raw, "client_cert"), client_key=_opt(raw, "client_key"),
        timeout=timeout,
    )


def _opt(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    return str(value) if value else None


def load_mesh_config(path: Path | str, env: Mapping[str, str] | None = None) -> MeshConfig:
    """Read the MESH configuration file at ``path``."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"MESH configuration file not found: {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"MESH configuration {p}: {exc}") from None
    return parse_mesh_config(raw, env, where=str(p))
