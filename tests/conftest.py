"""Fixtures shared by all tests: the real services on loopback and the reference data folder.

Mosquitto (127.0.0.1:1883) and PostgreSQL (127.0.0.1:5432) are used where they run. Where one is
absent, its tests skip with the reason, unless ``KOOPERANT_REQUIRE_SERVICES=1`` (set by CI), where
they fail instead so a missing service cannot pass unnoticed.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from kooperant.net import free_tcp_port
from tests.support.delivery_report import SESSION_REPORT, DeliveryReport

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MOSQUITTO = ("127.0.0.1", 1883)
POSTGRES = ("127.0.0.1", 5432)
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


def _missing_service(reason: str) -> None:
    if os.environ.get("KOOPERANT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (KOOPERANT_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def mosquitto_url() -> str:
    """The URL of the Mosquitto broker on loopback."""
    if not _reachable(MOSQUITTO):
        _missing_service("Mosquitto is not listening on 127.0.0.1:1883")
    return f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database made for this test and dropped after it."""
    if not _reachable(POSTGRES):
        _missing_service("PostgreSQL is not listening on 127.0.0.1:5432")
    name = f"kooperant_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cluster_id() -> str:
    """A cluster id no other test run uses, so retained messages cannot leak between runs."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def nodesets_dir() -> Path:
    """The OPC Foundation NodeSet2 files, or a skip where they are absent."""
    configured = os.environ.get("KOOPERANT_NODESETS_DIR")
    folder = Path(configured) if configured else SHARED_DATA / "opcua-nodesets" / "current"
    if not folder.is_dir():
        pytest.skip(f"OPC UA nodesets not found at {folder}; set KOOPERANT_NODESETS_DIR")
    return folder


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return free_tcp_port()


@pytest.fixture
def delivery_report() -> DeliveryReport:
    """The session's delivery counts; each delivery test records its own."""
    return SESSION_REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    SESSION_REPORT.write(terminalreporter)
