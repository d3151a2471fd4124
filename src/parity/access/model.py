"""Who is using Parity: roles, users and the actor behind a request.

Plain values only; storage lives in ``users``/``tokens`` and visibility rules in ``scope``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """What kind of organisation a user works for, which decides what they may see (``scope``)."""

    practice = "practice"    # a GP practice: its own patients
    pcn = "pcn"              # a primary care network: its member practices' patients
    icb = "icb"              # an integrated care board: every practice in the ICB
    trust = "trust"          # a mental-health trust: its caseload, wherever registered
    programme = "programme"  # regional / national programme team: aggregates only
    admin = "admin"          # runs Parity (users, tokens, audit): aggregates only


# Roles that must name an organisation, and that may see patient-level data within it.
ORG_ROLES: frozenset[Role] = frozenset({Role.practice, Role.pcn, Role.icb, Role.trust})
PATIENT_LEVEL_ROLES: frozenset[Role] = ORG_ROLES

Via = Literal["session", "token"]


@dataclass(frozen=True)
class User:
    """A Parity account. ``org_code`` is the ODS code of the user's organisation (None for some roles)."""

    username: str
    role: Role
    org_code: str | None
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True)
class Actor:
    """The user making a request and how they proved it: a browser ``session`` or an API ``token``."""

    user: User
    via: Via

    def __post_init__(self) -> None:
        if self.via not in ("session", "token"):
            raise ValueError("via must be 'session' or 'token'")

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def org_code(self) -> str | None:
        return self.user.org_code
