"""Member profiles: the name, contact and region the coordinator records for a member.

Each function runs inside the caller's connection or transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from server.storage.tables import member_profiles


@dataclass(frozen=True, slots=True)
class MemberProfile:
    cluster: str
    member: str
    name: str
    contact_email: str | None = None
    contact_phone: str | None = None
    voivodeship: str | None = None
    """A code of ``server.regions.VOIVODESHIPS``."""
    city: str | None = None
    description: str | None = None
    updated_at: datetime | None = None


def save_profile(connection: Connection, profile: MemberProfile, now: datetime) -> None:
    """Insert the profile of ``profile.cluster/member``, or replace the stored one."""
    values = {
        "name": profile.name,
        "contact_email": profile.contact_email,
        "contact_phone": profile.contact_phone,
        "voivodeship": profile.voivodeship,
        "city": profile.city,
        "description": profile.description,
        "updated_at": now,
    }
    key = (member_profiles.c.cluster == profile.cluster) & (
        member_profiles.c.member == profile.member
    )
    if read_profile(connection, profile.cluster, profile.member) is None:
        connection.execute(
            insert(member_profiles).values(cluster=profile.cluster, member=profile.member, **values)
        )
    else:
        connection.execute(update(member_profiles).where(key).values(**values))


def read_profile(connection: Connection, cluster: str, member: str) -> MemberProfile | None:
    """Return the profile of ``cluster/member``, or ``None`` when none was recorded."""
    row = connection.execute(
        select(member_profiles).where(
            member_profiles.c.cluster == cluster, member_profiles.c.member == member
        )
    ).one_or_none()
    if row is None:
        return None
    return MemberProfile(
        cluster=row.cluster,
        member=row.member,
        name=row.name,
        contact_email=row.contact_email,
        contact_phone=row.contact_phone,
        voivodeship=row.voivodeship,
        city=row.city,
        description=row.description,
        updated_at=row.updated_at,
    )
