"""Accounts of the web application, kept in the store file next to the meter data: users
(passwords hashed with argon2), API tokens (shown once, kept as SHA-256), login sessions, the
audit log and the job table.

These tables belong to the web application alone (prefix ``web_``); the meter data tables are
only ever touched through :mod:`lastgang.services` and the billing service. The connection is
DuckDB's own second connection to the same database (one process may hold several; another
process is refused by DuckDB's file lock, see :func:`open_accounts`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lastgang.errors import InvalidInput, Problem, StoreError

__all__ = [
    "SESSION_HOURS",
    "Accounts",
    "AuditEntry",
    "JobRecord",
    "Role",
    "Scope",
    "Session",
    "Token",
    "User",
    "open_accounts",
]

#: a login session ends this many hours after its last use
SESSION_HOURS = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_users (
    name VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL,
    site_id VARCHAR,
    unit_id VARCHAR,
    password_hash VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS web_tokens (
    token_id VARCHAR PRIMARY KEY,
    token_sha256 VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    label VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS web_sessions (
    session_sha256 VARCHAR PRIMARY KEY,
    user_name VARCHAR NOT NULL,
    csrf VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS web_audit_ids START 1;
CREATE TABLE IF NOT EXISTS web_audit (
    id BIGINT PRIMARY KEY,
    happened_at TIMESTAMPTZ NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    site_id VARCHAR,
    subject VARCHAR NOT NULL,
    detail VARCHAR NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS web_job_ids START 1;
CREATE TABLE IF NOT EXISTS web_jobs (
    id BIGINT PRIMARY KEY,
    kind VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    actor VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    params VARCHAR NOT NULL,
    payload BLOB,
    result VARCHAR
);
"""


class Role(StrEnum):
    """What a user account is: an administrator (every site, the audit log), an operator (one
    site, or every site when none is named) or a tenant (one billing unit of one site)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    TENANT = "tenant"


class Scope(StrEnum):
    """What an API token may do on its site: ``read-only`` reads, ``operator`` also imports,
    applies configurations and runs bills, ``admin`` also reads the audit log."""

    READ_ONLY = "read-only"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    site_id: str | None
    unit_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Token:
    token_id: str
    site_id: str
    scope: Scope
    label: str
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    site_id: str | None
    subject: str
    detail: str


@dataclass(frozen=True)
class JobRecord:
    """A background job (an import, a billing run, ...) as stored."""

    id: int
    kind: str
    site_id: str
    actor: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    params: dict[str, Any]
    result: dict[str, Any] | None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> datetime:
    """Now, to the millisecond: what the tables keep and give back (``epoch_ms``), so a record
    returned when it is made equals the one read later."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _aware(ms: int | None) -> datetime | None:
    """A UTC datetime from epoch milliseconds (timestamps leave DuckDB as ``epoch_ms``)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _req(value: int | None) -> datetime:
    out = _aware(value)
    assert out is not None
    return out


# argon2id with the library's defaults (RFC 9106 low-memory profile)
_HASHER = PasswordHasher()

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")


class Accounts:
    """Users, tokens, sessions, audit log and jobs in the store's database file."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        try:
            self._con = duckdb.connect(self._path)
        except duckdb.IOException as exc:
            raise StoreError(_locked_message(self._path, str(exc))) from None
        self._lock = threading.RLock()
        with self._tx():
            self._con.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @contextmanager
    def _tx(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    # -- users -------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str,
        role: Role,
        *,
        site_id: str | None = None,
        unit_id: str | None = None,
        known_sites: Sequence[str] | None = None,
    ) -> User:
        """Create a user (``InvalidInput`` naming every problem: a taken or malformed name, a
        short password, a tenant without site and unit, an unknown site)."""
        problems: list[Problem] = []
        if not name or any(c not in _NAME_OK for c in name) or len(name) > 64:
            problems.append(
                Problem("a user name has 1 to 64 letters, digits, '.', '_', '@' or '-'")
            )
        if len(password) < 8:
            problems.append(Problem("the password is shorter than 8 characters: choose a longer"))
        if role is Role.TENANT and (site_id is None or unit_id is None):
            problems.append(Problem("a tenant needs --site and --unit (the unit it may see)"))
        if role is not Role.TENANT and unit_id is not None:
            problems.append(Problem("only a tenant is tied to a unit: leave out --unit"))
        if role is Role.ADMIN and site_id is not None:
            problems.append(Problem("an admin sees every site: leave out --site"))
        if known_sites is not None and site_id is not None and site_id not in known_sites:
            known = ", ".join(known_sites) or "none yet"
            problems.append(Problem(f"unknown site {site_id!r} (sites: {known})"))
        if self.user(name) is not None:
            problems.append(Problem(f"the user {name!r} exists already"))
        if problems:
            raise InvalidInput(f"user {name!r} not added", problems)
        now = _now()
        with self._tx() as con:
            con.execute(
                "INSERT INTO web_users VALUES (?, ?, ?, ?, ?, ?)",
                [name, role.value, site_id, unit_id, _HASHER.hash(password), now],
            )
        return User(name, role, site_id, unit_id, now)

    def user(self, name: str) -> User | None:
        rows = self._rows(
            "SELECT name, role, site_id, unit_id, epoch_ms(created_at) FROM web_users "
            "WHERE name = ?",
            [name],
        )
        if not rows:
            return None
        r = rows[0]
        return User(r[0], Role(r[1]), r[2], r[3], _req(r[4]))

    def users(self) -> list[User]:
        rows = self._rows(
            "SELECT name, role, site_id, unit_id, epoch_ms(created_at) FROM web_users ORDER BY name"
        )
        return [User(r[0], Role(r[1]), r[2], r[3], _req(r[4])) for r in rows]

    def user_count(self) -> int:
        return int(self._rows("SELECT count(*) FROM web_users")[0][0])

    def check_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is right; ``None`` otherwise (an unknown name costs a
        hash too, so the answer time does not tell which names exist)."""
        rows = self._rows("SELECT password_hash FROM web_users WHERE name = ?", [name])
        stored = rows[0][0] if rows else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return self.user(name) if rows else None

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, user: User, *, now: datetime | None = None) -> tuple[str, Session]:
        """A new login session: returns the secret for the cookie (kept only as SHA-256)."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        when = now or _now()
        expires = when + timedelta(hours=SESSION_HOURS)
        with self._tx() as con:
            con.execute("DELETE FROM web_sessions WHERE expires_at < ?", [when])
            con.execute(
                "INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?)",
                [_sha256(secret), user.name, csrf, when, expires],
            )
        return secret, Session(user, csrf, expires)

    def session(self, secret: str, *, now: datetime | None = None) -> Session | None:
        when = now or _now()
        rows = self._rows(
            "SELECT user_name, csrf, epoch_ms(expires_at) FROM web_sessions "
            "WHERE session_sha256 = ?",
            [_sha256(secret)],
        )
        if not rows or _req(rows[0][2]) < when:
            return None
        user = self.user(rows[0][0])
        if user is None:
            return None
        return Session(user, rows[0][1], _req(rows[0][2]))

    def end_session(self, secret: str) -> None:
        with self._tx() as con:
            con.execute("DELETE FROM web_sessions WHERE session_sha256 = ?", [_sha256(secret)])

    # -- tokens ------------------------------------------------------------------------------

    def create_token(
        self,
        site_id: str,
        scope: Scope,
        *,
        days: int | None = None,
        label: str = "",
        now: datetime | None = None,
    ) -> tuple[str, Token]:
        """A new API token for one site: returns the token text (shown once, kept only as
        SHA-256) and its record. ``days``: valid for that many days (``None``: no expiry)."""
        if days is not None and days <= 0:
            raise InvalidInput(
                "token not created", [Problem("--expires must be a positive number of days")]
            )
        when = now or _now()
        token_id = secrets.token_hex(6)
        secret = f"lg_{token_id}_{secrets.token_urlsafe(32)}"
        expires = None if days is None else when + timedelta(days=days)
        with self._tx() as con:
            con.execute(
                "INSERT INTO web_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                [token_id, _sha256(secret), site_id, scope.value, label, when, expires],
            )
        return secret, Token(token_id, site_id, scope, label, when, expires)

    def token(self, secret: str, *, now: datetime | None = None) -> Token | None:
        """The token record for a presented token text, ``None`` if unknown or expired."""
        parts = secret.split("_")
        if len(parts) < 3 or parts[0] != "lg":
            return None
        rows = self._rows(
            "SELECT token_id, token_sha256, site_id, scope, label, epoch_ms(created_at), "
            "epoch_ms(expires_at) "
            "FROM web_tokens WHERE token_id = ?",
            [parts[1]],
        )
        if not rows or not secrets.compare_digest(rows[0][1], _sha256(secret)):
            return None
        r = rows[0]
        expires = _aware(r[6])
        if expires is not None and expires <= (now or _now()):
            return None
        return Token(r[0], r[2], Scope(r[3]), r[4], _req(r[5]), expires)

    # -- audit log ---------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        site_id: str | None,
        subject: str,
        detail: str = "",
        *,
        now: datetime | None = None,
    ) -> None:
        """Record who did what (applied a configuration version, imported a batch, finalized a
        billing run, logged in)."""
        with self._tx() as con:
            con.execute(
                "INSERT INTO web_audit VALUES (nextval('web_audit_ids'), ?, ?, ?, ?, ?, ?)",
                [now or _now(), actor, action, site_id, subject, detail],
            )

    def audit_log(self, site_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        sql = (
            "SELECT id, epoch_ms(happened_at), actor, action, site_id, subject, detail "
            "FROM web_audit"
        )
        params: list[object] = []
        if site_id is not None:
            sql += " WHERE site_id = ?"
            params.append(site_id)
        params.append(limit)
        rows = self._rows(sql + " ORDER BY id DESC LIMIT ?", params)
        return [AuditEntry(r[0], _req(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]

    # -- jobs --------------------------------------------------------------------------------

    def add_job(
        self,
        kind: str,
        site_id: str,
        actor: str,
        params: dict[str, Any],
        payload: bytes | None = None,
    ) -> JobRecord:
        """Record a job as queued, with what it needs to run (so it survives a restart)."""
        now = _now()
        with self._tx() as con:
            row = con.execute(
                "INSERT INTO web_jobs VALUES (nextval('web_job_ids'), ?, ?, ?, 'queued', ?, "
                "NULL, ?, ?, NULL) RETURNING id",
                [kind, site_id, actor, now, json.dumps(params), payload],
            ).fetchall()
        return JobRecord(int(row[0][0]), kind, site_id, actor, "queued", now, None, params, None)

    def job_payload(self, job_id: int) -> bytes | None:
        rows = self._rows("SELECT payload FROM web_jobs WHERE id = ?", [job_id])
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])

    def set_job_state(self, job_id: int, state: str, result: dict[str, Any] | None = None) -> None:
        finished = _now() if state in ("done", "failed") else None
        with self._tx() as con:
            con.execute(
                "UPDATE web_jobs SET state = ?, finished_at = ?, result = ? WHERE id = ?",
                [state, finished, None if result is None else json.dumps(result), job_id],
            )
            if state in ("done", "failed"):  # archived now, or refused: not needed again
                con.execute("UPDATE web_jobs SET payload = NULL WHERE id = ?", [job_id])

    def job(self, job_id: int) -> JobRecord | None:
        rows = self._rows(f"SELECT {_JOB_COLUMNS} FROM web_jobs WHERE id = ?", [job_id])
        return _job(rows[0]) if rows else None

    def jobs(
        self, site_id: str | None = None, states: Sequence[str] = (), limit: int = 100
    ) -> list[JobRecord]:
        sql = f"SELECT {_JOB_COLUMNS} FROM web_jobs WHERE true"
        params: list[object] = []
        if site_id is not None:
            sql += " AND site_id = ?"
            params.append(site_id)
        if states:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params.extend(states)
        params.append(limit)
        return [_job(r) for r in self._rows(sql + " ORDER BY id DESC LIMIT ?", params)]


_JOB_COLUMNS = (
    "id, kind, site_id, actor, state, epoch_ms(created_at), epoch_ms(finished_at), params, result"
)


def _job(r: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        r[4],
        _req(r[5]),
        _aware(r[6]),
        json.loads(r[7]),
        None if r[8] is None else json.loads(r[8]),
    )


_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def _locked_message(path: str, detail: str) -> str:
    if "lock" in detail.lower():
        return (
            f"the store {path} is in use by another lastgang process (a running `lastgang "
            "serve`?); stop it first, or name another store with --db PATH or LASTGANG_DB"
        )
    return f"cannot open the store {path}: {detail}"


def open_accounts(path: str | Path) -> Accounts:
    """The accounts of the store file ``path`` (``StoreError`` when another process holds it)."""
    folder = Path(path).parent
    if not folder.exists():
        raise StoreError(f"cannot open the store {path}: the folder {folder} does not exist")
    return Accounts(path)
