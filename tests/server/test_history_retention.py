"""Retention of the offer history: settings, the CLI option, the prune and the sweep."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from kooperant.i18n import use_language
from server.cli import app as server_app
from server.errors import InvalidSettingError
from server.service import sweep_expired
from server.settings import (
    DEFAULT_HISTORY_RETENTION_DAYS,
    MAX_HISTORY_RETENTION_DAYS,
    ServerSettings,
)
from server.storage import Storage
from server.storage.visibility import Viewer
from tests.server.helpers import T0, hours
from tests.server.history_helpers import (
    OWNER,
    capacity_days_count,
    history_times,
    offer_at,
)

YEAR_AGO = T0 - timedelta(days=400)


def test_settings_retention_default() -> None:
    assert ServerSettings().history_retention_days == DEFAULT_HISTORY_RETENTION_DAYS == 365


@pytest.mark.parametrize("value", [-1, MAX_HISTORY_RETENTION_DAYS + 1])
def test_settings_reject_bad_retention(value: int) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(history_retention_days=value)

    with use_language("pl"):
        polish = raised.value.localized()
    assert raised.value.message_id == "history_retention_invalid"
    assert f"Invalid history retention {value} (--history-retention-days)" in str(raised.value)
    assert f"od 1 do {MAX_HISTORY_RETENTION_DAYS}" in polish
    assert "--history-retention-days" in polish


@pytest.mark.parametrize("value", [0, 1, MAX_HISTORY_RETENTION_DAYS])
def test_settings_accept_retention(value: int) -> None:
    assert ServerSettings(history_retention_days=value).history_retention_days == value


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        ("-3", "en", "Invalid history retention -3 (--history-retention-days)"),
        ("-3", "pl", "Nieprawidłowy okres przechowywania historii -3"),
        ("a year", "en", "--history-retention-days"),
    ],
)
def test_cli_bad_retention_exits_2(
    sqlite_url: str, value: str, language: Any, expected: str
) -> None:
    with use_language(language):
        result = CliRunner().invoke(
            server_app,
            ["run", "--database", sqlite_url, "--history-retention-days", value],
        )

    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())


def test_prune_keeps_everything_with_zero(storage: Storage) -> None:
    storage.store_offer(offer_at(YEAR_AGO), YEAR_AGO)
    storage.store_offer(offer_at(T0), T0)

    result = storage.maintain_history(T0, 0)

    assert result is not None
    assert result.prune is None
    assert history_times(storage) == [YEAR_AGO, T0]
    assert capacity_days_count(storage) == 2


def test_prune_on_sqlite_uses_exact_cutoff(sqlite_storage: Storage) -> None:
    storage = sqlite_storage
    cutoff = T0 - timedelta(days=30)
    for moment in (YEAR_AGO, cutoff - hours(1), cutoff, T0):
        storage.store_offer(offer_at(moment), moment)

    result = storage.maintain_history(T0, 30)

    assert result is not None
    assert result.prune is not None
    assert result.prune.kept_from == cutoff
    assert result.prune.deleted_history_rows == 2
    # The day of the cutoff keeps its row, which contains its later version: the one at the cutoff.
    assert result.prune.deleted_capacity_days == 1
    assert history_times(storage) == [cutoff, T0]
    assert capacity_days_count(storage) == 2


def test_prune_keeps_current_offer(storage: Storage) -> None:
    storage.store_offer(offer_at(YEAR_AGO), YEAR_AGO)

    storage.maintain_history(T0, 30)

    record = storage.get_resource(*OWNER, "cnc-5ax-01", viewer=Viewer(*OWNER), now=T0)
    page = storage.list_history(*OWNER, "cnc-5ax-01", viewer=Viewer(*OWNER), now=T0)
    assert record is not None
    assert page is not None
    assert page.total == 0


def test_prune_logs_counts(sqlite_storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    sqlite_storage.store_offer(offer_at(YEAR_AGO), YEAR_AGO)

    with caplog.at_level(logging.INFO, logger="server.storage.history_maintenance"):
        sqlite_storage.maintain_history(T0, 30)

    assert [record.levelno for record in caplog.records] == [logging.INFO]
    assert "1 history rows and 1 capacity days deleted" in caplog.text


async def test_sweep_prunes_once_an_hour(sqlite_storage: Storage) -> None:
    storage = sqlite_storage
    clock_times = [T0]
    sweeps = 0

    def clock() -> datetime:
        nonlocal sweeps
        sweeps += 1
        return clock_times[0]

    storage.store_offer(offer_at(YEAR_AGO), YEAR_AGO)
    stop = asyncio.Event()
    sweeper = asyncio.create_task(
        sweep_expired(storage, clock, 0.01, stop, history_retention_days=30)
    )
    await _wait_for(lambda: history_times(storage) == [])

    storage.store_offer(offer_at(YEAR_AGO + hours(1)), YEAR_AGO + hours(1))
    seen = sweeps
    await _wait_for(lambda: sweeps >= seen + 3)
    kept_within_the_hour = history_times(storage)
    clock_times[0] = T0 + hours(1)
    await _wait_for(lambda: history_times(storage) == [])
    stop.set()
    await asyncio.wait_for(sweeper, timeout=5)

    assert kept_within_the_hour == [YEAR_AGO + hours(1)]


async def _wait_for(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def test_retention_start_matches_capacity_plot(storage: Storage) -> None:
    recent = T0 - timedelta(days=3)
    storage.store_offer(offer_at(YEAR_AGO), YEAR_AGO)
    storage.store_offer(offer_at(recent), recent)
    storage.store_offer(offer_at(T0), T0)

    storage.maintain_history(T0, 30)

    capacity = storage.cluster_capacity(viewer=Viewer(*OWNER), now=T0, days=500)
    page = storage.list_history(*OWNER, "cnc-5ax-01", viewer=Viewer(*OWNER), now=T0)
    assert page is not None
    assert [item.generated_at for item in page.items] == [T0, recent]
    assert [point.day for point in capacity] == [recent.date(), T0.date()]
