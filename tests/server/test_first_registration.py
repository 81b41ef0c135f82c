"""The coordinator's first new member in a cluster warns about members already sending offers.

The cluster's first registration makes ingest reject unregistered members, so the new-member
form lists the members whose offers were accepted without one and registers them too unless the
coordinator clears the box.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.passwords import hash_password
from server.storage import Storage
from tests.server.helpers import T0, machine_offer
from tests.server.test_dashboard_sign_in import (
    COORDINATOR_PASSWORD,
    Clocks,
    Site,
    csrf_token,
    make_client,
    sign_in,
)


@pytest.fixture
async def site(storage: Storage) -> AsyncIterator[Site]:
    storage.store_offer(machine_offer("c2", "seen-one", "cnc"), T0)
    storage.store_offer(machine_offer("c2", "seen-two", "lathe"), T0)
    storage.store_offer(machine_offer("c3", "elsewhere", "cnc"), T0)
    storage.create_user(
        username="coord2",
        password_hash=hash_password(COORDINATOR_PASSWORD),
        role="coordinator",
        cluster="c2",
        member=None,
        display_name=None,
        must_change_password=False,
        now=T0,
    )
    clocks = Clocks()
    async with make_client(storage, clocks) as client:
        await sign_in(client, "coord2", COORDINATOR_PASSWORD)
        yield Site(client, storage, clocks)


async def create_member(site: Site, **extra: str) -> int:
    token = await csrf_token(site.client)
    response = await site.client.post(
        "/coordinator/members/new?lang=en",
        data={"csrf_token": token, "member": "newcomer", "name": "Newcomer", **extra},
    )
    return response.status_code


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "these members already send offers: seen-one, seen-two."),
        ("pl", "a oferty już wysyłają: seen-one, seen-two."),
    ],
)
async def test_form_lists_members_sending_offers(site: Site, language: str, expected: str) -> None:
    page = await site.client.get(f"/coordinator/members/new?lang={language}")

    assert page.status_code == 200
    assert expected in page.text
    assert 'name="register_seen" value="1" checked' in page.text
    assert "elsewhere" not in page.text


async def test_first_member_registers_senders(site: Site) -> None:
    status = await create_member(site, register_seen="1")

    assert status == 200
    assert site.storage.is_registered("c2", "newcomer")
    assert site.storage.is_registered("c2", "seen-one")
    assert site.storage.is_registered("c2", "seen-two")
    assert not site.storage.is_registered("c3", "elsewhere")
    after = await site.client.get("/coordinator/members/new?lang=en")
    assert "already send offers" not in after.text


async def test_cleared_box_registers_only_new(site: Site) -> None:
    status = await create_member(site)

    assert status == 200
    assert site.storage.is_registered("c2", "newcomer")
    assert not site.storage.is_registered("c2", "seen-one")
    assert site.storage.seen_unregistered("c2") == []
