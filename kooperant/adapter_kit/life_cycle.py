"""Checks that drive an adapter through its life cycle: build, start, collect, stop.

Each check builds its own adapter instance from an ``AdapterCase`` in a fresh folder under
``work_dir`` and raises ``ConformanceError`` on the first rule it finds broken. The coroutines
must run on an event loop, as the agent runs adapters; ``run_conformance`` runs them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from adapters.base import STOP_TIMEOUT_SECONDS, Adapter, Observation
from kooperant.adapter_kit.case import AdapterCase, case_context, write_files
from kooperant.adapter_kit.io_watch import watch_io
from kooperant.adapter_kit.loop_watch import LoopWatch
from kooperant.adapter_kit.rules import ConformanceError, Rule
from kooperant.adapter_kit.values import (
    check_health,
    check_observations,
    check_settings,
    check_withheld,
)

POLL_SECONDS = 0.05
MAX_SHOWN_CHARS = 2000
TASK_GRACE_SECONDS = 0.5
MAX_EVENTS_SHOWN = 5

ResultT = TypeVar("ResultT")


async def check_construction(case: AdapterCase, work_dir: Path) -> Adapter[Any]:
    """Check that ``__init__`` returns at once without I/O, and return the adapter.

    The context's ``config_dir`` does not exist, and must still not exist afterwards. I/O is
    detected with audit hooks; ``kooperant.adapter_kit.io_watch`` lists what they see.
    """
    settings = check_settings(case.adapter_class, case.settings)
    config_dir = work_dir / "config-never-created"
    context = case_context(case, config_dir)

    started = time.monotonic()
    with watch_io() as events:
        adapter = case.adapter_class(case.instance_name, settings, context)
    elapsed = time.monotonic() - started

    if events:
        raise ConformanceError(Rule.INIT_NO_IO, f"__init__: {_list_events(events)}")
    if config_dir.exists():
        raise ConformanceError(Rule.INIT_NO_IO, f"__init__ created {config_dir}")
    if elapsed > case.call_limit_seconds:
        raise ConformanceError(
            Rule.INIT_DURATION, f"__init__ took {elapsed:.3f} s, limit {case.call_limit_seconds} s"
        )
    return adapter


async def check_life_cycle(
    case: AdapterCase, work_dir: Path, *, with_files: bool = True
) -> list[Observation]:
    """Start the adapter, wait for the expected observations, stop it; return those observations.

    The adapter runs for at least ``case.run_seconds``. Every ``collect()``, ``health()`` and
    ``withheld_kinds()`` result is checked on the way, the event loop is watched for blocking,
    and no task the adapter started may outlive ``stop()``. With ``with_files=False`` the case's
    files are not written, as for a source that is missing at start, and the expectation is not
    waited for.
    """
    config_dir = work_dir / ("config" if with_files else "config-without-files")
    write_files(config_dir, case.files if with_files else {})
    settings = check_settings(case.adapter_class, case.settings)
    adapter = case.adapter_class(case.instance_name, settings, case_context(case, config_dir))

    async with LoopWatch() as loop_watch:
        tasks_before = asyncio.all_tasks()
        try:
            await _start(adapter, case.start_limit_seconds)
            observations = await _wait_for_expected(adapter, case, with_files)
        except BaseException:
            await _stop_quietly(adapter)
            raise
        await _stop(adapter, Rule.STOP_DURATION)
        await _check_no_tasks_left(tasks_before)

    if loop_watch.max_lag_seconds > case.loop_block_limit_seconds:
        raise ConformanceError(
            Rule.LOOP_NOT_BLOCKED,
            f"the loop was blocked for {loop_watch.max_lag_seconds:.3f} s, "
            f"limit {case.loop_block_limit_seconds} s",
        )
    return observations


async def check_stop_without_start(case: AdapterCase, work_dir: Path) -> None:
    """Check that ``stop()`` on an adapter that was never started finishes in time."""
    adapter = _build(case, work_dir / "config-stop-without-start")
    await _stop(adapter, Rule.STOP_WITHOUT_START)


async def check_stop_after_failed_start(case: AdapterCase, work_dir: Path) -> None:
    """Cancel ``start()`` at its first suspension point, then check that ``stop()`` cleans up.

    The agent cancels a ``start()`` that exceeds its time limit in the same way. An adapter whose
    ``start()`` never suspends has completed it before the cancel arrives.
    """
    adapter = _build(case, work_dir / "config-failed-start")
    tasks_before = asyncio.all_tasks()

    start = asyncio.create_task(adapter.start())
    await asyncio.sleep(0)
    start.cancel()
    # Whatever start() raises when cancelled is the failure being simulated.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await start

    await _stop(adapter, Rule.STOP_AFTER_FAILED_START)
    await _check_no_tasks_left(tasks_before)


def check_snapshot(adapter: Adapter[Any], limit_seconds: float) -> list[Observation]:
    """Call ``collect()``, ``health()`` and ``withheld_kinds()`` once each and check the results."""
    observations = check_observations(_call(adapter.collect, "collect()", limit_seconds))
    check_health(_call(adapter.health, "health()", limit_seconds))
    check_withheld(_call(adapter.withheld_kinds, "withheld_kinds()", limit_seconds))
    return observations


def _call(method: Callable[[], ResultT], label: str, limit_seconds: float) -> ResultT:
    started = time.monotonic()
    try:
        with watch_io() as events:
            result = method()
    except Exception as error:
        raise ConformanceError(
            Rule.SNAPSHOT_RAISES, f"{label} raised {type(error).__name__}: {error}"
        ) from error
    elapsed = time.monotonic() - started

    if events:
        raise ConformanceError(Rule.SNAPSHOT_NO_IO, f"{label}: {_list_events(events)}")
    if elapsed > limit_seconds:
        raise ConformanceError(
            Rule.SNAPSHOT_DURATION, f"{label} took {elapsed:.3f} s, limit {limit_seconds} s"
        )
    return result


def _build(case: AdapterCase, config_dir: Path) -> Adapter[Any]:
    write_files(config_dir, case.files)
    settings = check_settings(case.adapter_class, case.settings)
    return case.adapter_class(case.instance_name, settings, case_context(case, config_dir))


async def _start(adapter: Adapter[Any], limit_seconds: float) -> None:
    try:
        async with asyncio.timeout(limit_seconds):
            await adapter.start()
    except TimeoutError as error:
        detail = f"start() was still running after {limit_seconds} s"
        raise ConformanceError(Rule.START_RETURNS, detail) from error
    except Exception as error:
        detail = f"start() raised {type(error).__name__}: {error}"
        raise ConformanceError(Rule.START_RETURNS, detail) from error


async def _wait_for_expected(
    adapter: Adapter[Any], case: AdapterCase, with_files: bool
) -> list[Observation]:
    """Check snapshots until the expectation is met and ``run_seconds`` have passed.

    Without the case's files the expectation cannot be met, so it is not waited for.
    """
    expect = case.expect if with_files else None
    started = time.monotonic()
    matched: list[Observation] | None = None
    while True:
        observations = check_snapshot(adapter, case.call_limit_seconds)
        if matched is None and (expect is None or expect(observations)):
            matched = observations

        elapsed = time.monotonic() - started
        if matched is not None and elapsed >= case.run_seconds:
            return matched
        if matched is None and elapsed >= case.expect_within_seconds:
            raise ConformanceError(
                Rule.EXPECTED,
                f"not seen within {case.expect_within_seconds} s; the last collect() returned "
                + _shorten(repr(observations)),
            )
        await asyncio.sleep(POLL_SECONDS)


async def _stop(adapter: Adapter[Any], rule: Rule) -> None:
    started = time.monotonic()
    try:
        async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
            await adapter.stop()
    except TimeoutError as error:
        elapsed = time.monotonic() - started
        detail = f"stop() raised TimeoutError or was still running after {elapsed:.1f} s"
        raise ConformanceError(rule, detail) from error
    except Exception as error:
        detail = f"stop() raised {type(error).__name__}: {error}"
        raise ConformanceError(rule, detail) from error


async def _stop_quietly(adapter: Adapter[Any]) -> None:
    # Cleanup after an earlier failure, which is the one to report.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
            await adapter.stop()


async def _check_no_tasks_left(tasks_before: set[asyncio.Task[Any]]) -> None:
    # A task cancelled by stop() may need a few loop steps to finish its cleanup.
    deadline = time.monotonic() + TASK_GRACE_SECONDS
    while True:
        left = [task for task in asyncio.all_tasks() - tasks_before if not task.done()]
        if not left:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(sorted(repr(task.get_name()) for task in left))
            raise ConformanceError(Rule.STOP_TASKS, f"still running after stop(): {names}")
        await asyncio.sleep(POLL_SECONDS)


def _list_events(events: list[str]) -> str:
    shown = "; ".join(events[:MAX_EVENTS_SHOWN])
    more = len(events) - MAX_EVENTS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _shorten(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return text[: MAX_SHOWN_CHARS - 3] + "..."
