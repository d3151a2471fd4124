"""The access layer: users, tokens, audit log, row-level scope, sign-in throttle and the CLI.

Database tests run on DuckDB and PostgreSQL (``any_db``). NHS numbers are in the test range with
valid check digits.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import nhs_number
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from parity import access
from parity.access import (
    Actor,
    AuthenticationError,
    LoginThrottle,
    NotFound,
    Role,
    TooManyAttempts,
    add_user,
    authenticate,
    disable_user,
    ensure_access_schema,
    entries,
    get_user,
    issue_token,
    list_users,
    record,
    resolve_token,
    revoke_token,
    revoke_tokens,
    scope_for,
    set_password,
    verify_chain,
)
from parity.access import users as users_module
from parity.access.cli import audit_app, users_app
from parity.db import Database, open_database
from parity.errors import ConfigurationError, ParityError, exit_code_for

PASSWORD = "correct horse battery"
AS_OF = date(2026, 3, 31)
IN_CASELOAD = "9434765919"    # trust event a year before AS_OF
OLD_CASELOAD = "9434765870"   # trust event 30 months before AS_OF
EDGE_IN = "9990000026"        # trust event on the first day of the 24-month window
EDGE_OUT = "9990000034"       # trust event the day before it
PRACTICE_ONLY = "9990000018"  # only practice-recorded events
TRUST_AFTER = "9990000042"    # trust event after AS_OF

# (structure, practice, pcn, icb, region). 2 PCNs, 2 ICBs, 4 practices; A00004 has no PCN.
# In the 2026 structure A00003 moves to ICB QBB.
PRACTICES = [
    ("2022-23", "A00001", "U00001", "QAA", "Y01"),
    ("2022-23", "A00002", "U00001", "QAA", "Y01"),
    ("2022-23", "A00003", "U00002", "QAA", "Y01"),
    ("2022-23", "A00004", None, "QBB", "Y02"),
    ("2026", "A00001", "U00001", "QAA", "Y01"),
    ("2026", "A00002", "U00001", "QAA", "Y01"),
    ("2026", "A00003", "U00002", "QBB", "Y02"),
    ("2026", "A00004", None, "QBB", "Y02"),
]


def test_fixture_nhs_numbers_are_valid_test_numbers() -> None:
    for n in (IN_CASELOAD, OLD_CASELOAD, EDGE_IN, EDGE_OUT, PRACTICE_ONLY, TRUST_AFTER):
        assert nhs_number.is_valid(n)
        assert 9_000_000_000 <= int(n) <= 9_999_999_999


def _fill(db: Database) -> None:
    for structure, practice, pcn, icb, region in PRACTICES:
        db.execute(
            "INSERT INTO practices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [structure, practice, f"Practice {practice}", pcn, f"PCN {pcn}" if pcn else None, f"S{icb}",
             f"Sub-ICB {icb}", icb, f"ICB {icb}", region, f"Region {region}"],
        )
    events = [
        (IN_CASELOAD, date(2025, 3, 31), "RX2"),
        (OLD_CASELOAD, date(2023, 9, 30), "RX2"),
        (EDGE_IN, date(2024, 4, 1), "RX2"),
        (EDGE_OUT, date(2024, 3, 31), "RX2"),
        (PRACTICE_ONLY, date(2025, 6, 1), "A00001"),
        (TRUST_AFTER, date(2026, 4, 1), "RX2"),
        (IN_CASELOAD, date(2025, 4, 1), "A00004"),
    ]
    for nhs, day, by in events:
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", [nhs, day, 271649006, None, None, by])


def _filled(db: Database) -> Database:
    _fill(db)
    ensure_access_schema(db)
    return db


@pytest.fixture
def db(any_db: Database) -> Database:
    return _filled(any_db)


# -- users -----------------------------------------------------------------------------------------

def test_add_and_authenticate(db: Database) -> None:
    user = add_user(db, "Alice.Smith", "practice", "a00001", PASSWORD)
    assert (user.username, user.role, user.org_code, user.disabled) == ("alice.smith", Role.practice, "A00001", False)
    assert authenticate(db, "alice.smith", PASSWORD) == user
    assert authenticate(db, " ALICE.smith ", PASSWORD).username == "alice.smith"
    assert get_user(db, "alice.smith") == user
    assert [u.username for u in list_users(db)] == ["alice.smith"]
    stored = db.execute("SELECT password_hash FROM users")[0][0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_wrong_password_and_unknown_user_look_the_same(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    add_user(db, "bob", "icb", "QAA", PASSWORD)
    verified: list[str] = []
    real = users_module._verify

    def spy(stored: str, password: str) -> bool:
        verified.append(stored)
        return real(stored, password)

    monkeypatch.setattr(users_module, "_verify", spy)
    with pytest.raises(AuthenticationError) as wrong:
        authenticate(db, "bob", "not the password")
    with pytest.raises(AuthenticationError) as unknown:
        authenticate(db, "nobody", PASSWORD)
    assert str(wrong.value) == str(unknown.value) == "unknown username or wrong password"
    assert exit_code_for(wrong.value) == 6
    # The unknown user still pays for one Argon2 verification (no timing oracle).
    assert len(verified) == 2 and all(h.startswith("$argon2id$") for h in verified)


@pytest.mark.parametrize(("username", "role", "org", "password", "message"), [
    ("carol", "practice", "A00001", "short", "at least 12"),
    ("x", "practice", "A00001", PASSWORD, "username"),
    ("bad name", "practice", "A00001", PASSWORD, "username"),
    ("carol", "wizard", "A00001", PASSWORD, "role"),
    ("carol", "practice", None, PASSWORD, "needs --org"),
    ("carol", "practice", "Z99999", PASSWORD, "unknown practice"),
    ("carol", "practice", "U00001", PASSWORD, "unknown practice"),  # a PCN code is not a practice
    ("carol", "pcn", "U00009", PASSWORD, "unknown PCN"),
    ("carol", "icb", "A00001", PASSWORD, "unknown ICB"),
    ("carol", "trust", "not-ods!", PASSWORD, "ODS"),
    ("carol", "trust", None, PASSWORD, "needs --org"),
    ("carol", "programme", "QZZ", PASSWORD, "unknown region or ICB"),
])
def test_add_user_rejects(db: Database, username: str, role: str, org: str | None, password: str,
                          message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        add_user(db, username, role, org, password)
    assert list_users(db) == []


def test_add_user_accepts_each_role(db: Database) -> None:
    add_user(db, "pcn-user", Role.pcn, "U00002", PASSWORD)
    add_user(db, "icb-user", Role.icb, "QBB", PASSWORD)
    add_user(db, "trust-user", Role.trust, "RX2", PASSWORD)  # trusts are not in practices
    add_user(db, "prog-region", Role.programme, "Y01", PASSWORD)
    add_user(db, "prog-icb", Role.programme, "QAA", PASSWORD)
    add_user(db, "prog-england", Role.programme, None, PASSWORD)
    add_user(db, "root", Role.admin, None, PASSWORD)
    assert {u.username: u.org_code for u in list_users(db)} == {
        "icb-user": "QBB", "pcn-user": "U00002", "prog-england": None, "prog-icb": "QAA", "prog-region": "Y01",
        "root": None, "trust-user": "RX2"}


def test_old_hash_parameters_upgraded_on_sign_in(db: Database) -> None:
    from argon2 import PasswordHasher

    add_user(db, "olga", "practice", "A00001", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    db.execute("UPDATE users SET password_hash = ? WHERE username = ?", [weak, "olga"])
    assert authenticate(db, "olga", PASSWORD).username == "olga"
    upgraded = db.execute("SELECT password_hash FROM users WHERE username = ?", ["olga"])[0][0]
    assert upgraded != weak and not PasswordHasher().check_needs_rehash(upgraded)
    assert authenticate(db, "olga", PASSWORD).username == "olga"


def test_duplicate_username(db: Database) -> None:
    add_user(db, "dave", "practice", "A00001", PASSWORD)
    with pytest.raises(ConfigurationError, match="already exists"):
        add_user(db, "DAVE", "icb", "QAA", PASSWORD)


def test_set_password(db: Database) -> None:
    add_user(db, "erin", "practice", "A00002", PASSWORD)
    set_password(db, "erin", "a brand new passphrase")
    with pytest.raises(AuthenticationError):
        authenticate(db, "erin", PASSWORD)
    assert authenticate(db, "erin", "a brand new passphrase").username == "erin"
    with pytest.raises(ConfigurationError):
        set_password(db, "erin", "short")
    with pytest.raises(NotFound):
        set_password(db, "nobody", "a brand new passphrase")


def test_disabled_user_cannot_authenticate_or_use_tokens(db: Database) -> None:
    add_user(db, "frank", "practice", "A00001", PASSWORD)
    token = issue_token(db, "frank")
    assert resolve_token(db, token).username == "frank"
    user = disable_user(db, "frank")
    assert user.disabled and get_user(db, "frank").disabled
    assert disable_user(db, "frank").disabled  # idempotent
    with pytest.raises(AuthenticationError, match="unknown username or wrong password"):
        authenticate(db, "frank", PASSWORD)
    with pytest.raises(AuthenticationError):
        resolve_token(db, token)
    with pytest.raises(ConfigurationError, match="disabled"):
        issue_token(db, "frank")
    with pytest.raises(NotFound):
        disable_user(db, "nobody")
    with pytest.raises(NotFound):
        get_user(db, "nobody")


# -- tokens ----------------------------------------------------------------------------------------

def test_tokens_issue_resolve_revoke(db: Database) -> None:
    add_user(db, "gina", "icb", "QAA", PASSWORD)
    t1 = issue_token(db, "gina", label="nightly export")
    t2 = issue_token(db, "gina")
    assert t1 != t2 and t1.startswith("parity_") and len(t1) >= 7 + 43
    assert resolve_token(db, t1).username == "gina"
    # Only the SHA-256 is stored: the token is in no column of any row.
    for row in db.execute("SELECT * FROM api_tokens"):
        assert all(t1 not in str(v) and t2 not in str(v) for v in row)
    assert len(db.execute("SELECT token_hash FROM api_tokens")[0][0]) == 64

    assert revoke_token(db, t1) is True
    assert revoke_token(db, t1) is False
    with pytest.raises(AuthenticationError, match="unknown or revoked API token"):
        resolve_token(db, t1)
    assert resolve_token(db, t2).username == "gina"
    assert revoke_tokens(db, "gina") == 1
    with pytest.raises(AuthenticationError):
        resolve_token(db, t2)
    for bogus in ("", "parity_nonsense", "Bearer " + t2, "x" * 500):
        with pytest.raises(AuthenticationError):
            resolve_token(db, bogus)
    with pytest.raises(NotFound):
        issue_token(db, "nobody")


# -- audit -----------------------------------------------------------------------------------------

def _three_entries(db: Database) -> None:
    user = add_user(db, "hana", "practice", "A00001", PASSWORD)
    record(db, None, "login_failed", None, "denied", "wrong password", username="hana")
    record(db, Actor(user, "session"), "view_worklist", "practice/A00001")
    record(db, Actor(user, "token"), "api_worklist", "practice/A00002", "denied", "outside scope")


def test_audit_append_and_read(db: Database) -> None:
    _three_entries(db)
    got = entries(db)
    assert [e.seq for e in got] == [3, 2, 1]  # newest first
    first = got[-1]
    assert (first.username, first.role, first.action, first.outcome) == ("hana", None, "login_failed", "denied")
    third = got[0]
    assert (third.role, third.org_code, third.via, third.resource, third.detail) == (
        "practice", "A00001", "token", "practice/A00002", "outside scope")
    assert third.prev_hash == got[1].hash and first.prev_hash == "0" * 64
    assert third.at.tzinfo is not None
    assert [e.seq for e in entries(db, action="view_worklist")] == [2]
    assert [e.seq for e in entries(db, username="hana", limit=1, offset=1)] == [2]
    assert [e.seq for e in entries(db, resource="practice/A00002")] == [3]
    assert verify_chain(db) is None
    assert access.chain_head(db) == (3, third.hash)


def test_audit_rejects_bad_input_and_sanitises_names(db: Database) -> None:
    with pytest.raises(ValueError, match="action"):
        record(db, None, "View Worklist", username="x")
    with pytest.raises(ValueError, match="outcome"):
        record(db, None, "login", outcome="maybe", username="x")  # type: ignore[arg-type]
    e = record(db, None, "login_failed", outcome="denied", username="evil\nseq 99\x00" + "a" * 100)
    assert "\n" not in e.username and "\x00" not in e.username and len(e.username) == 64
    assert verify_chain(db) is None


def test_audit_concurrent_appends_form_one_chain(db: Database) -> None:
    def work(i: int) -> None:
        for j in range(10):
            record(db, None, "login_failed", f"user/user{i}", "denied", str(j), username=f"user{i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.seq for e in entries(db, limit=1000)] == list(range(60, 0, -1))
    assert verify_chain(db) is None


def test_audit_tamper_detected_duckdb(duckdb_db: Database) -> None:
    db = _filled(duckdb_db)
    _three_entries(db)
    assert verify_chain(db) is None
    db.execute("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2")
    assert verify_chain(db) == 2


def test_audit_rewritten_hash_breaks_next_link_duckdb(duckdb_db: Database) -> None:
    db = _filled(duckdb_db)
    _three_entries(db)
    e2 = next(e for e in entries(db) if e.seq == 2)
    # Without the deployment key (kept outside the database) a recomputed hash does not verify.
    forged = access.audit.compute_hash(b"a guessed key", e2.prev_hash, 2, e2.at, "someone-else", e2.role,
                                       e2.org_code, e2.via, e2.action, e2.resource, e2.outcome, e2.detail)
    db.execute("UPDATE audit_log SET username = 'someone-else', hash = ? WHERE seq = 2", [forged])
    assert verify_chain(db) == 2


def test_audit_deletion_detected_duckdb(duckdb_db: Database) -> None:
    db = _filled(duckdb_db)
    _three_entries(db)
    db.execute("DELETE FROM audit_log WHERE seq = 2")
    assert verify_chain(db) == 3
    db.execute("DELETE FROM audit_log WHERE seq = 1")
    assert verify_chain(db) == 3


@pytest.mark.postgres
def test_postgres_trigger_rejects_update_delete_truncate(postgres_db: Database) -> None:
    import psycopg

    db = _filled(postgres_db)
    ensure_access_schema(db)
    ensure_access_schema(db)  # idempotent: the trigger is not duplicated
    n_triggers = db.execute("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass('audit_log') "
                            "AND NOT tgisinternal")[0][0]
    assert n_triggers == 2
    _three_entries(db)
    for sql in ("UPDATE audit_log SET detail = 'x' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 2",
                "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(psycopg.Error, match="append-only"):
            db.execute(sql)
    assert db.count("audit_log") == 3
    assert verify_chain(db) is None


@pytest.mark.postgres
def test_postgres_two_connections_one_chain(postgres_url: str, postgres_db: Database) -> None:
    ensure_access_schema(postgres_db)
    other = open_database(postgres_url)
    try:
        def work(target: Database, name: str) -> None:
            for _ in range(15):
                record(target, None, "login", username=name)

        threads = [threading.Thread(target=work, args=(postgres_db, "one")),
                   threading.Thread(target=work, args=(other, "two"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    assert postgres_db.count("audit_log") == 30
    assert verify_chain(postgres_db) is None


def test_no_update_or_delete_api() -> None:
    public = set(dir(access.audit))
    assert not {n for n in public if n.startswith(("update", "delete", "remove", "edit"))}


# -- scope -----------------------------------------------------------------------------------------

def _user(db: Database, name: str, role: str, org: str | None) -> access.User:
    return add_user(db, name, role, org, PASSWORD)


def test_scope_practice_pcn_icb(db: Database) -> None:
    practice = scope_for(db, _user(db, "prac1", "practice", "A00001"), "2022-23", AS_OF)
    pcn = scope_for(db, _user(db, "pcn1", "pcn", "U00001"), "2022-23", AS_OF)
    icb = scope_for(db, _user(db, "icb1", "icb", "QAA"), "2022-23", AS_OF)
    icb_2026 = scope_for(db, get_user(db, "icb1"), "2026", AS_OF)
    assert practice.practices == {"A00001"} and practice.home_org() == ("practice", "A00001")
    assert pcn.practices == {"A00001", "A00002"} and pcn.home_org() == ("pcn", "U00001")
    assert icb.practices == {"A00001", "A00002", "A00003"} and icb.home_org() == ("icb", "QAA")
    assert icb_2026.practices == {"A00001", "A00002"}
    for s in (practice, pcn, icb):
        assert s.aggregates and s.patient_level and s.caseload is None
    assert pcn.can_view_practice("A00002") and not pcn.can_view_practice("A00003")
    assert icb.can_view_patient(PRACTICE_ONLY, "A00003") and not icb.can_view_patient(PRACTICE_ONLY, "A00004")
    assert not practice.can_view_patient(PRACTICE_ONLY, "A00002")

    df = pd.DataFrame({"nhs_number": [IN_CASELOAD, PRACTICE_ONLY, EDGE_IN, EDGE_OUT],
                       "practice_code": ["A00001", "A00002", "A00003", "A00004"], "all_six": [True] * 4})
    assert list(practice.filter_patients(df)["practice_code"]) == ["A00001"]
    assert list(pcn.filter_patients(df)["practice_code"]) == ["A00001", "A00002"]
    assert list(icb.filter_patients(df)["practice_code"]) == ["A00001", "A00002", "A00003"]
    with pytest.raises(ValueError, match="practice_code"):
        icb.filter_patients(df.drop(columns="practice_code"))


def test_scope_trust_caseload(db: Database) -> None:
    trust = scope_for(db, _user(db, "trust1", "trust", "RX2"), "2022-23", AS_OF)
    assert access.CASELOAD_MONTHS == 24
    assert trust.patient_level and trust.aggregates and trust.practices is None
    # In: a year before; exactly the window's first day. Out: the day before, 30 months before,
    # after as_of, practice-recorded only.
    assert trust.caseload == {IN_CASELOAD, EDGE_IN}
    assert trust.home_org() is None
    assert trust.can_view_practice("A00004")  # any worklist, cut to the caseload by filter_patients
    assert trust.can_view_patient(IN_CASELOAD, "A00004")
    assert not trust.can_view_patient(OLD_CASELOAD, "A00001")
    df = pd.DataFrame({"nhs_number": [IN_CASELOAD, OLD_CASELOAD, EDGE_IN, PRACTICE_ONLY],
                       "practice_code": ["A00004", "A00001", "A00002", "A00001"]})
    assert list(trust.filter_patients(df)["nhs_number"]) == [IN_CASELOAD, EDGE_IN]
    # One day later the window moves: the event on 2026-04-01 now counts, the old first day does not.
    later = scope_for(db, get_user(db, "trust1"), "2022-23", date(2026, 4, 1))
    assert later.caseload == {IN_CASELOAD, TRUST_AFTER}


def test_scope_programme_and_admin_see_aggregates_only(db: Database) -> None:
    df = pd.DataFrame({"nhs_number": [IN_CASELOAD], "practice_code": ["A00001"]})
    for name, role, org in (("prog1", "programme", "Y01"), ("prog2", "programme", None), ("admin1", "admin", None)):
        s = scope_for(db, _user(db, name, role, org), "2022-23", AS_OF)
        assert s.aggregates and not s.patient_level
        assert s.practices is None and s.caseload is None and s.home_org() is None
        assert not s.can_view_practice("A00001") and not s.can_view_patient(IN_CASELOAD, "A00001")
        assert s.filter_patients(df).empty


def test_scope_disabled_user_sees_nothing(db: Database) -> None:
    _user(db, "prac2", "practice", "A00001")
    s = scope_for(db, disable_user(db, "prac2"), "2022-23", AS_OF)
    assert not s.aggregates and not s.patient_level and not s.can_view_practice("A00001")


# -- throttle --------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 30, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _fail(t: LoginThrottle, username: str, ip: str | None) -> None:
    t.failed(t.begin(username, ip))


def test_throttle_delays_progressively_after_five_failures(any_db) -> None:
    clock = FakeClock()
    t = LoginThrottle(any_db, clock=clock)
    for _ in range(5):
        _fail(t, "ivy", "10.0.0.1")
        clock.tick(1)
    with pytest.raises(TooManyAttempts) as exc:
        t.begin("IVY", "10.0.0.1")  # usernames are case-insensitive
    assert exc.value.exit_code == 9 and 0 < exc.value.retry_after <= 30
    t.failed(t.begin("ivy", "10.0.0.9"))  # another address: the real user is not locked out
    clock.tick(30)
    _fail(t, "ivy", "10.0.0.1")  # after the delay one more try; then the delay doubles
    clock.tick(30)
    with pytest.raises(TooManyAttempts):
        t.begin("ivy", "10.0.0.1")
    clock.tick(30)
    t.begin("ivy", "10.0.0.1")


def test_throttle_success_clears_username_only(any_db) -> None:
    clock = FakeClock()
    t = LoginThrottle(any_db, clock=clock, max_failures_per_address=5)
    for i in range(5):
        _fail(t, f"jack{i}", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        t.begin("someone-else", "10.0.0.1")  # the address has used its tries
    attempt = t.begin("jack", "10.0.0.2")
    t.succeeded(attempt, "jack", "10.0.0.2")
    t.begin("jack", None)  # unknown address: only the username counts


def test_throttle_counts_attempts_in_flight(any_db) -> None:
    """An attempt counts from ``begin``: parallel guesses cannot all pass before any fails."""
    t = LoginThrottle(any_db, clock=FakeClock())
    for _ in range(5):
        t.begin("kim", "10.0.0.3")  # five passwords being checked, none finished
    with pytest.raises(TooManyAttempts):
        t.begin("kim", "10.0.0.3")


def test_throttle_address_limit_is_higher_than_the_account_limit(any_db) -> None:
    """A practice behind one NAT address: colleagues' typos must not lock everyone out."""
    t = LoginThrottle(any_db, clock=FakeClock())
    for i in range(49):
        _fail(t, f"user{i}", "10.0.0.1")
    t.begin("someone-else", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        t.begin("another", "10.0.0.1")


# -- CLI -------------------------------------------------------------------------------------------

@pytest.fixture
def cli_db(tmp_path: object) -> str:
    path = str(tmp_path) + "/parity.duckdb"  # type: ignore[operator]
    with open_database(path) as db:
        _fill(db)
    return path


def _cli() -> typer.Typer:
    # Mounted the way parity.cli mounts them.
    app = typer.Typer()
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
    return app


def test_cli_users_tokens_and_audit(cli_db: str) -> None:
    runner = CliRunner()
    app = _cli()
    add = runner.invoke(app, ["users", "add", "--username", "lee", "--role", "practice", "--org", "A00001",
                              "--database", cli_db], env={"PARITY_PASSWORD": PASSWORD})
    assert add.exit_code == 0, add.output
    assert "added lee (practice A00001)" in add.output
    prompted = runner.invoke(app, ["users", "add", "--username", "moe", "--role", "admin", "--database", cli_db],
                             input=f"{PASSWORD}\n{PASSWORD}\n", env={"PARITY_PASSWORD": None})
    assert prompted.exit_code == 0, prompted.output
    assert PASSWORD not in prompted.output  # hidden input is not echoed
    bad = runner.invoke(app, ["users", "add", "--username", "nat", "--role", "icb", "--org", "QZZ",
                              "--password", PASSWORD, "--database", cli_db])
    assert isinstance(bad.exception, ParityError) and "unknown ICB" in str(bad.exception)

    tok = runner.invoke(app, ["users", "token", "lee", "--label", "tests", "--database", cli_db])
    assert tok.exit_code == 0, tok.output
    token = tok.stdout.strip()
    assert token.startswith("parity_")

    listed = runner.invoke(app, ["users", "list", "--database", cli_db])
    assert listed.exit_code == 0, listed.output
    assert "lee" in listed.output and "moe" in listed.output and "active" in listed.output
    assert "$argon2" not in listed.output and token not in listed.output

    with open_database(cli_db, create=False) as db:
        assert resolve_token(db, token).username == "lee"
        hashes = [r[0] for r in db.execute("SELECT password_hash FROM users")]
        token_hashes = [r[0] for r in db.execute("SELECT token_hash FROM api_tokens")]

    revoked = runner.invoke(app, ["users", "revoke-tokens", "lee", "--database", cli_db])
    assert revoked.exit_code == 0 and "revoked 1 token(s)" in revoked.output
    disabled = runner.invoke(app, ["users", "disable", "lee", "--database", cli_db])
    assert disabled.exit_code == 0 and "disabled lee" in disabled.output

    shown = runner.invoke(app, ["audit", "show", "--limit", "10", "--database", cli_db])
    assert shown.exit_code == 0, shown.output
    for action in ("user_added", "token_issued", "tokens_revoked", "user_disabled"):
        assert action in shown.output
    assert runner.invoke(app, ["audit", "show", "--user", "nobody", "--database", cli_db]).output.strip() == (
        "no audit entries")
    verified = runner.invoke(app, ["audit", "verify", "--database", cli_db])
    assert verified.exit_code == 0 and "audit log intact: 5 entries" in verified.output

    outputs = add.output + prompted.output + tok.output + listed.output + shown.output + verified.output
    for secret in (*hashes, *token_hashes):
        assert secret not in outputs

    with open_database(cli_db, create=False) as db:
        db.execute("UPDATE audit_log SET detail = 'x' WHERE seq = 4")
    broken = runner.invoke(app, ["audit", "verify", "--database", cli_db])
    assert isinstance(broken.exception, ParityError) and "seq 4" in str(broken.exception)


def test_cli_missing_database_is_an_error(tmp_path: object) -> None:
    result = CliRunner().invoke(_cli(), ["users", "list", "--database", f"{tmp_path}/missing.duckdb"])
    assert isinstance(result.exception, ParityError) and exit_code_for(result.exception) == 3


