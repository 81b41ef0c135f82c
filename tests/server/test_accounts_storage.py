"""Account storage on SQLite and PostgreSQL: users, sessions with a controlled clock, profiles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from server.errors import AccountError
from server.storage import Storage
from server.storage.accounts import SESSION_IDLE_TIMEOUT, SESSION_MAX_AGE, session_digest
from server.storage.profiles import MemberProfile
from server.storage.tables import web_sessions
from tests.server.helpers import T0


def add_user(storage: Storage, username: str = "Anna", **changes: object) -> int:
    fields: dict[str, object] = {
        "username": username,
        "password_hash": "$argon2id$placeholder",
        "role": "coordinator",
        "cluster": "c1",
        "member": None,
        "display_name": None,
        "must_change_password": False,
        "now": T0,
    }
    fields.update(changes)
    return storage.create_user(**fields).id  # type: ignore[arg-type]


def test_user_stored_lowercase(storage: Storage) -> None:
    add_user(storage, "Anna.Kowalska")

    found = storage.find_user("ANNA.kowalska")

    assert found is not None
    assert found.username == "anna.kowalska"
    assert "placeholder" not in repr(found)
    assert storage.any_user()


def test_user_duplicate_any_case(storage: Storage) -> None:
    add_user(storage, "anna")

    with pytest.raises(AccountError) as raised:
        add_user(storage, "ANNA")

    assert raised.value.message_id == "user_exists"


@pytest.mark.parametrize(
    ("changes", "message_id"),
    [
        ({"username": "bad name"}, "username_invalid"),
        ({"username": ""}, "username_invalid"),
        ({"role": "admin"}, "user_role_invalid"),
        ({"role": "member"}, "user_member_missing"),
        ({"role": "member", "member": "ghost"}, "user_member_unknown"),
    ],
)
def test_user_bad_input(storage: Storage, changes: dict[str, object], message_id: str) -> None:
    with pytest.raises(AccountError) as raised:
        add_user(storage, **changes)  # type: ignore[arg-type]

    assert raised.value.message_id == message_id


def test_user_member_of_other_cluster(storage: Storage) -> None:
    storage.register_member("c2", "beta", T0)

    with pytest.raises(AccountError) as raised:
        add_user(storage, role="member", member="beta")

    assert raised.value.message_id == "user_member_other_cluster"


def test_no_user_before_first(storage: Storage) -> None:
    assert not storage.any_user()


def test_identity_account_checks(storage: Storage) -> None:
    storage.register_member("c1", "beta", T0)
    storage.register_member("c2", "beta", T0)
    member_id = add_user(storage, "beta", role="member", member="beta")
    linked_id = add_user(storage, "beta-coordinator", member="beta")
    add_user(storage, "coord-c2", cluster="c2", member="beta")

    both = storage.identity_has_enabled_account("c1", "beta")
    storage.disable_user(member_id)
    coordinator_left = storage.identity_has_enabled_account("c1", "beta")
    storage.disable_user(linked_id)
    none_left = storage.identity_has_enabled_account("c1", "beta")
    storage.enable_user(member_id)
    enabled_again = storage.identity_has_enabled_account("c1", "beta")

    assert both
    assert coordinator_left
    assert not none_left
    assert enabled_again
    assert not storage.identity_has_enabled_account("c1", "gamma")
    # Only a coordinator without a member stands for ``c1/``, and only in its own cluster.
    assert not storage.identity_has_enabled_account("c1", None)
    assert not storage.identity_has_enabled_account("c2", None)


def test_identity_of_coordinator_without_member(storage: Storage) -> None:
    coordinator_id = add_user(storage, "anna")
    storage.register_member("c1", "beta", T0)
    add_user(storage, "beta", role="member", member="beta")

    enabled = storage.identity_has_enabled_account("c1", None)
    storage.disable_user(coordinator_id)
    disabled = storage.identity_has_enabled_account("c1", None)

    assert enabled
    assert not disabled
    assert not storage.identity_has_enabled_account("c2", None)


def test_session_stores_only_digest(storage: Storage) -> None:
    user_id = add_user(storage)

    session = storage.create_session(user_id, T0)

    with storage.engine.connect() as connection:
        stored = connection.execute(select(web_sessions.c.session_sha256)).scalars().all()
    assert stored == [session_digest(session.session_id)]
    assert session.session_id not in stored
    assert session.session_id not in repr(session)


def test_session_idle_expiry(storage: Storage) -> None:
    session = storage.create_session(add_user(storage), T0)

    alive = storage.find_session(session.session_id, T0 + SESSION_IDLE_TIMEOUT - timedelta(1e-3))
    touched = storage.find_session(session.session_id, T0 + SESSION_IDLE_TIMEOUT * 1.5)
    idle = storage.find_session(session.session_id, T0 + SESSION_IDLE_TIMEOUT * 3)

    assert alive is not None
    assert touched is not None
    assert idle is None


def test_session_absolute_expiry(storage: Storage) -> None:
    session = storage.create_session(add_user(storage), T0)
    moment = T0
    while moment < T0 + SESSION_MAX_AGE - timedelta(hours=6):
        moment += timedelta(hours=6)
        assert storage.find_session(session.session_id, moment) is not None

    assert storage.find_session(session.session_id, T0 + SESSION_MAX_AGE) is None


def test_session_touch_at_most_each_minute(storage: Storage) -> None:
    session = storage.create_session(add_user(storage), T0)
    digest = session_digest(session.session_id)

    storage.find_session(session.session_id, T0 + timedelta(seconds=30))
    with storage.engine.connect() as connection:
        early = connection.execute(
            select(web_sessions.c.last_seen_at).where(web_sessions.c.session_sha256 == digest)
        ).scalar_one()
    storage.find_session(session.session_id, T0 + timedelta(seconds=90))
    with storage.engine.connect() as connection:
        later = connection.execute(
            select(web_sessions.c.last_seen_at).where(web_sessions.c.session_sha256 == digest)
        ).scalar_one()

    assert early == T0
    assert later == T0 + timedelta(seconds=90)


def test_session_ends_with_user_changes(storage: Storage) -> None:
    user_id = add_user(storage)
    first = storage.create_session(user_id, T0)
    second = storage.create_session(user_id, T0)

    storage.set_password(user_id, "$argon2id$new", must_change=False, now=T0)
    assert storage.find_session(first.session_id, T0) is None
    assert storage.find_session(second.session_id, T0) is None

    third = storage.create_session(user_id, T0)
    storage.disable_user(user_id)
    assert storage.find_session(third.session_id, T0) is None


def test_session_delete_and_unknown(storage: Storage) -> None:
    session = storage.create_session(add_user(storage), T0)

    storage.delete_session(session.session_id)

    assert storage.find_session(session.session_id, T0) is None
    assert storage.find_session("no-such-session", T0) is None


def test_sweep_deletes_expired_sessions(storage: Storage) -> None:
    user_id = add_user(storage)
    old = storage.create_session(user_id, T0)
    fresh = storage.create_session(user_id, T0 + SESSION_IDLE_TIMEOUT)

    storage.sweep(T0 + SESSION_IDLE_TIMEOUT + timedelta(minutes=1))

    with storage.engine.connect() as connection:
        stored = set(connection.execute(select(web_sessions.c.session_sha256)).scalars())
    assert stored == {session_digest(fresh.session_id)}
    assert session_digest(old.session_id) not in stored


def test_profile_save_and_replace(storage: Storage) -> None:
    profile = MemberProfile("c1", "acme", "ACME sp. z o.o.", voivodeship="pomorskie", city="Gdańsk")

    storage.save_profile(profile, T0)
    storage.save_profile(MemberProfile("c1", "acme", "ACME S.A.", city="Gdynia"), T0)

    stored = storage.read_profile("c1", "acme")
    assert stored is not None
    assert stored.name == "ACME S.A."
    assert stored.city == "Gdynia"
    assert stored.voivodeship is None
    assert storage.read_profile("c1", "other") is None


def test_member_with_user_once(storage: Storage) -> None:
    profile = MemberProfile("c1", "acme", "ACME")
    fields = {"password_hash": "$argon2id$x", "display_name": "ACME", "must_change_password": True}

    user = storage.create_member_with_user(profile, now=T0, username="acme", **fields)
    with pytest.raises(AccountError) as raised:
        storage.create_member_with_user(profile, now=T0, username="acme2", **fields)

    assert (user.role, user.cluster, user.member) == ("member", "c1", "acme")
    assert storage.is_registered("c1", "acme")
    assert raised.value.message_id == "member_exists"
    assert storage.find_user("acme2") is None
