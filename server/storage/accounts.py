"""Dashboard accounts and their browser sessions.

Each function runs inside the caller's connection or transaction (``Storage`` opens them).
User names are stored in lower case and looked up case-insensitively. A session id lives only in
the browser's cookie; the database keeps its SHA-256, so a copy of the database cannot sign
anybody in. A session ends after ``SESSION_IDLE_TIMEOUT`` without a request or at
``SESSION_MAX_AGE`` after sign-in, whichever comes first, and at once when its user is disabled
or changes or resets the password.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, exists, insert, or_, select, union, update

from server.errors import AccountError
from server.storage.tables import members, registered_members, users, web_sessions

SESSION_IDLE_TIMEOUT = timedelta(hours=12)
SESSION_MAX_AGE = timedelta(days=7)
# ``last_seen_at`` is written at most this often, so that page views are not all writes.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)

ROLES = ("member", "coordinator")
MAX_USERNAME_LENGTH = 64
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A dashboard account. ``password_hash`` is left out of the repr."""

    id: int
    username: str
    role: str
    cluster: str
    member: str | None
    display_name: str | None
    must_change_password: bool
    disabled: bool
    created_at: datetime
    password_changed_at: datetime
    password_hash: str = field(repr=False)

    @property
    def shown_name(self) -> str:
        """The name the dashboard shows: the display name, or else the user name."""
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just created. ``session_id`` goes into the cookie and is never stored."""

    session_id: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A live session and its user."""

    user: UserRecord
    csrf_token: str = field(repr=False)
    expires_at: datetime


def normalize_username(username: str) -> str:
    """Return ``username`` stripped and in lower case, or raise ``AccountError`` if invalid."""
    normalized = username.strip().lower()
    if not _USERNAME.fullmatch(normalized):
        raise AccountError("username_invalid", value=username)
    return normalized


def session_digest(session_id: str) -> str:
    """Return the hex SHA-256 of a session id, the form in which it is stored."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def check_member_of_cluster(connection: Connection, cluster: str, member: str) -> None:
    """Raise ``AccountError`` unless ``member`` is known in ``cluster``.

    A member is known once it is registered (``kooperant server add-member``) or once a message
    of it was accepted. A member known only in another cluster gets its own message, because
    that is the usual mistake.
    """
    if _member_known(connection, cluster, member):
        return
    if _member_known(connection, None, member):
        raise AccountError("user_member_other_cluster", member=member, cluster=cluster)
    raise AccountError("user_member_unknown", member=member, cluster=cluster)


def _member_known(connection: Connection, cluster: str | None, member: str) -> bool:
    found = False
    for table in (registered_members, members):
        conditions = [table.c.member == member]
        if cluster is not None:
            conditions.append(table.c.cluster == cluster)
        found = found or bool(connection.execute(select(exists().where(*conditions))).scalar_one())
    return found


def known_clusters(connection: Connection) -> list[str]:
    """Return the sorted clusters that have a registered member, a member seen, or a user."""
    query = union(
        select(registered_members.c.cluster), select(members.c.cluster), select(users.c.cluster)
    )
    return sorted(connection.execute(query).scalars())


def create_user(
    connection: Connection,
    *,
    username: str,
    password_hash: str,
    role: str,
    cluster: str,
    member: str | None,
    display_name: str | None,
    must_change_password: bool,
    now: datetime,
) -> UserRecord:
    """Insert a user and return it; raise ``AccountError`` for a taken name or a bad role."""
    normalized = normalize_username(username)
    if role not in ROLES:
        raise AccountError("user_role_invalid", value=role)
    if role == "member" and member is None:
        raise AccountError("user_member_missing", username=normalized)
    existing = find_user(connection, normalized)
    if existing is not None and existing.disabled:
        raise AccountError("user_exists_disabled", username=normalized)
    if existing is not None:
        raise AccountError("user_exists", username=normalized)

    connection.execute(
        insert(users).values(
            username=normalized,
            password_hash=password_hash,
            role=role,
            cluster=cluster,
            member=member,
            display_name=display_name,
            must_change_password=must_change_password,
            disabled=False,
            created_at=now,
            password_changed_at=now,
        )
    )
    created = find_user(connection, normalized)
    assert created is not None
    return created


def find_user(connection: Connection, username: str) -> UserRecord | None:
    """Return the user named ``username`` (any case), or ``None``."""
    row = connection.execute(
        select(users).where(users.c.username == username.strip().lower())
    ).one_or_none()
    return _user(row) if row is not None else None


def find_user_of_member(connection: Connection, cluster: str, member: str) -> UserRecord | None:
    """Return the first member account of ``cluster/member``, or ``None``."""
    row = connection.execute(
        select(users)
        .where(users.c.cluster == cluster, users.c.member == member, users.c.role == "member")
        .order_by(users.c.id)
        .limit(1)
    ).one_or_none()
    return _user(row) if row is not None else None


def list_users(connection: Connection, cluster: str) -> list[UserRecord]:
    """Return the users of ``cluster`` ordered by user name."""
    rows = connection.execute(
        select(users).where(users.c.cluster == cluster).order_by(users.c.username)
    ).all()
    return [_user(row) for row in rows]


def any_user(connection: Connection) -> bool:
    """Return whether at least one dashboard account exists."""
    return bool(connection.execute(select(exists().where(users.c.id.is_not(None)))).scalar_one())


def identity_has_enabled_account(connection: Connection, cluster: str, member: str | None) -> bool:
    """Return whether ``cluster/member`` has at least one enabled dashboard account.

    For a member that is an account of role member or coordinator linked to ``(cluster,
    member)``. For ``member`` ``None`` it is a coordinator account of ``cluster`` without a
    member.
    """
    conditions = [users.c.cluster == cluster, users.c.disabled.is_(False)]
    if member is None:
        conditions += [users.c.role == "coordinator", users.c.member.is_(None)]
    else:
        conditions += [users.c.member == member, users.c.role.in_(ROLES)]
    return bool(connection.execute(select(exists().where(*conditions))).scalar_one())


def set_password(
    connection: Connection,
    user_id: int,
    password_hash: str,
    *,
    must_change: bool,
    now: datetime,
) -> None:
    """Replace a user's password hash and end all of the user's sessions."""
    connection.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            password_hash=password_hash,
            must_change_password=must_change,
            password_changed_at=now,
        )
    )
    delete_user_sessions(connection, user_id)


def rehash_password(connection: Connection, user_id: int, password_hash: str) -> None:
    """Store a new hash of the same password, computed with the current argon2 parameters."""
    connection.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )


def disable_user(connection: Connection, user_id: int) -> None:
    """Mark a user disabled and end all of the user's sessions."""
    connection.execute(update(users).where(users.c.id == user_id).values(disabled=True))
    delete_user_sessions(connection, user_id)


def enable_user(connection: Connection, user_id: int) -> None:
    """Mark a disabled user enabled again, with the password it had when it was disabled."""
    connection.execute(update(users).where(users.c.id == user_id).values(disabled=False))


def create_session(connection: Connection, user_id: int, now: datetime) -> NewSession:
    """Insert a new session of ``user_id`` with random 32-byte id and CSRF token."""
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = now + SESSION_MAX_AGE
    connection.execute(
        insert(web_sessions).values(
            session_sha256=session_digest(session_id),
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )
    return NewSession(session_id, csrf_token, expires_at)


def find_session(connection: Connection, session_id: str, now: datetime) -> SessionRecord | None:
    """Return the live session with id ``session_id`` and touch its ``last_seen_at``.

    ``None`` when there is no such session, it has expired (idle or absolute), or its user is
    disabled.
    """
    digest = session_digest(session_id)
    row = connection.execute(
        select(web_sessions, users)
        .join(users, users.c.id == web_sessions.c.user_id)
        .where(
            web_sessions.c.session_sha256 == digest,
            web_sessions.c.expires_at > now,
            web_sessions.c.last_seen_at > now - SESSION_IDLE_TIMEOUT,
            users.c.disabled.is_(False),
        )
    ).one_or_none()
    if row is None:
        return None

    if now - row.last_seen_at >= SESSION_TOUCH_INTERVAL:
        connection.execute(
            update(web_sessions)
            .where(web_sessions.c.session_sha256 == digest)
            .values(last_seen_at=now)
        )
    return SessionRecord(_user(row), row.csrf_token, row.expires_at)


def delete_session(connection: Connection, session_id: str) -> None:
    connection.execute(
        delete(web_sessions).where(web_sessions.c.session_sha256 == session_digest(session_id))
    )


def delete_user_sessions(connection: Connection, user_id: int) -> int:
    """Delete every session of ``user_id``; return how many there were."""
    result = connection.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))
    return result.rowcount or 0


def delete_expired_sessions(connection: Connection, now: datetime) -> int:
    """Delete the sessions that have expired at ``now``; return how many."""
    result = connection.execute(
        delete(web_sessions).where(
            or_(
                web_sessions.c.expires_at <= now,
                web_sessions.c.last_seen_at <= now - SESSION_IDLE_TIMEOUT,
            )
        )
    )
    return result.rowcount or 0


def _user(row: Row[Any]) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        role=row.role,
        cluster=row.cluster,
        member=row.member,
        display_name=row.display_name,
        must_change_password=bool(row.must_change_password),
        disabled=bool(row.disabled),
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
        password_hash=row.password_hash,
    )
