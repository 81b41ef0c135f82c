"""Secrets the server generates once and keeps in ``server_secrets``."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from server.storage.tables import server_secrets

SECRET_BYTES = 32


def read_or_create_secret(engine: Engine, name: str) -> bytes:
    """Return the secret ``name``, creating 32 random bytes on first use.

    Two servers creating it at once both insert; the primary key keeps the first, and the
    other reads that one after its insert fails.
    """
    stored = _read(engine, name)
    if stored is not None:
        return stored
    value = secrets.token_bytes(SECRET_BYTES)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(server_secrets).values(
                    name=name, value=value.hex(), created_at=datetime.now(UTC)
                )
            )
    except IntegrityError:
        stored = _read(engine, name)
        if stored is None:
            raise
        return stored
    return value


def _read(engine: Engine, name: str) -> bytes | None:
    with engine.connect() as connection:
        value = connection.execute(
            select(server_secrets.c.value).where(server_secrets.c.name == name)
        ).scalar_one_or_none()
    return bytes.fromhex(value) if value is not None else None
