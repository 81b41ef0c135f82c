"""The conformance kit: each broken rule is reported with its id and value."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter
from kooperant import adapter_kit
from kooperant.adapter_kit import (
    AdapterCase,
    AdapterConformanceTests,
    ConformanceError,
    Rule,
    check_construction,
    check_life_cycle,
    check_settings,
    check_stop_after_failed_start,
    check_stop_without_start,
    run_conformance,
)
from kooperant.adapter_kit import life_cycle as life_cycle_module
from kooperant.adapter_kit.io_watch import watch_io
from tests.adapters import kit_faults
from tests.adapters.kit_faults import settings_of


def case_of(adapter_class: type[Adapter[Any]], **options: Any) -> AdapterCase:
    return AdapterCase(adapter_class=adapter_class, settings=settings_of(), **options)


def broken_rule(error: pytest.ExceptionInfo[ConformanceError]) -> Rule:
    return error.value.rule


def test_kit_passes_healthy_adapter(tmp_path: Path) -> None:
    run_conformance(case_of(kit_faults.Healthy), tmp_path)


def test_kit_runs_in_temporary_folder() -> None:
    run_conformance(case_of(kit_faults.Healthy))


class TestHealthyThroughBaseClass(AdapterConformanceTests):
    case = case_of(kit_faults.Healthy)


@pytest.mark.parametrize(
    ("adapter_class", "settings", "rule", "shown"),
    [
        (kit_faults.Healthy, {}, Rule.SETTINGS_SAMPLE, "resource"),
        (kit_faults.AcceptsUnknownKeys, settings_of(), Rule.SETTINGS_UNKNOWN_KEY, "LooseSettings"),
        (kit_faults.MutableSettingsAdapter, settings_of(), Rule.SETTINGS_FROZEN, ".resource"),
        (
            kit_faults.NestedLooseAdapter,
            settings_of(),
            Rule.SETTINGS_NESTED,
            "NestedLooseSettings.machines (LooseMachine) has extra='ignore'",
        ),
        (kit_faults.AcceptsInfinity, settings_of(), Rule.SETTINGS_NESTED, "allow_inf_nan=True"),
    ],
)
def test_settings_check_reports_rule(
    adapter_class: type[Adapter[Any]], settings: dict[str, Any], rule: Rule, shown: str
) -> None:
    with pytest.raises(ConformanceError) as error:
        check_settings(adapter_class, settings)

    assert broken_rule(error) is rule
    assert shown in str(error.value)


def test_settings_check_rejects_plain_model() -> None:
    class NoModel(kit_faults.Healthy):
        settings_model = dict  # type: ignore[assignment]

    with pytest.raises(ConformanceError) as error:
        check_settings(NoModel, settings_of())

    assert broken_rule(error) is Rule.SETTINGS_MODEL
    assert "NoModel.settings_model is <class 'dict'>" in str(error.value)


@pytest.mark.parametrize(
    ("adapter_class", "shown"),
    [
        (kit_faults.ReadsFileInInit, "__init__: open("),
        (kit_faults.CreatesConfigDirInInit, "os.mkdir("),
        (kit_faults.OpensSocketInInit, "socket.__new__("),
    ],
)
def test_construction_check_reports_io(
    tmp_path: Path, adapter_class: type[Adapter[Any]], shown: str
) -> None:
    with pytest.raises(ConformanceError) as error:
        asyncio.run(check_construction(case_of(adapter_class), tmp_path))

    assert broken_rule(error) is Rule.INIT_NO_IO
    assert shown in str(error.value)


def test_construction_check_passes_healthy(tmp_path: Path) -> None:
    adapter = asyncio.run(check_construction(case_of(kit_faults.Healthy), tmp_path))

    assert isinstance(adapter, kit_faults.Healthy)
    assert not (tmp_path / "config-never-created").exists()


@pytest.mark.parametrize(
    ("adapter_class", "rule", "shown"),
    [
        (kit_faults.HangsInStart, Rule.START_RETURNS, "still running after 0.3 s"),
        (kit_faults.RaisesInStart, Rule.START_RETURNS, "ConnectionRefusedError: source at"),
        (kit_faults.ReturnsTuple, Rule.COLLECT_TYPE, "collect() returned tuple"),
        (kit_faults.ReturnsForeignItem, Rule.COLLECT_TYPE, "item 0 is dict"),
        (kit_faults.BadResourceId, Rule.RESOURCE_ID, "'hall/b'"),
        (kit_faults.InfiniteAmount, Rule.FINITE_NUMBER, "amount 'free' is inf"),
        (kit_faults.ReadsFileInCollect, Rule.SNAPSHOT_NO_IO, "collect(): open("),
        (kit_faults.SlowCollect, Rule.SNAPSHOT_DURATION, "collect() took 0.3"),
        (kit_faults.RaisesInCollect, Rule.SNAPSHOT_RAISES, "KeyError: 'machine-7'"),
        (kit_faults.NaiveHealthTime, Rule.AWARE_TIME, "(meter.json).since"),
        (kit_faults.HealthNotList, Rule.HEALTH_TYPE, "health() returned dict"),
        (kit_faults.WithheldByName, Rule.WITHHELD_TYPE, "entry 'machine'"),
        (kit_faults.LeavesTaskRunning, Rule.STOP_TASKS, "'healthy ticker'"),
        (kit_faults.BlocksLoopInTask, Rule.LOOP_NOT_BLOCKED, "s, limit 0.5 s"),
    ],
)
def test_life_cycle_check_reports_rule(
    tmp_path: Path, adapter_class: type[Adapter[Any]], rule: Rule, shown: str
) -> None:
    case = case_of(adapter_class, start_limit_seconds=0.3, expect_within_seconds=1.0)

    with pytest.raises(ConformanceError) as error:
        asyncio.run(check_life_cycle(case, tmp_path))

    assert broken_rule(error) is rule
    assert shown in str(error.value)


def test_life_cycle_check_stops_after_failure(tmp_path: Path) -> None:
    stopped: list[bool] = []

    class StopRecorded(kit_faults.BadResourceId):
        async def stop(self) -> None:
            stopped.append(True)
            await super().stop()

    with pytest.raises(ConformanceError):
        asyncio.run(check_life_cycle(case_of(StopRecorded), tmp_path))

    assert stopped == [True]


def test_life_cycle_check_waits_for_expected(tmp_path: Path) -> None:
    case = case_of(
        kit_faults.Healthy,
        expect=lambda observations: len(observations) == 2,
        expect_within_seconds=0.3,
    )

    with pytest.raises(ConformanceError) as error:
        asyncio.run(check_life_cycle(case, tmp_path))

    assert broken_rule(error) is Rule.EXPECTED
    assert "not seen within 0.3 s; the last collect() returned [ResourceAmounts(" in str(
        error.value
    )


def test_life_cycle_check_writes_case_files(tmp_path: Path) -> None:
    seen: list[str] = []

    class ReadsFileInStart(kit_faults.Healthy):
        async def start(self) -> None:
            path = self.resolve_path(Path("meters/a.json"))
            seen.append(await asyncio.to_thread(path.read_text, encoding="utf-8"))

    case = case_of(ReadsFileInStart, files={"meters/a.json": '{"kwh": 1}'})

    asyncio.run(check_life_cycle(case, tmp_path))

    assert seen == ['{"kwh": 1}']


def test_life_cycle_check_rejects_file_outside_folder(tmp_path: Path) -> None:
    case = case_of(kit_faults.Healthy, files={"../escape.txt": "x"})

    with pytest.raises(ValueError, match=r"'\.\./escape\.txt' of the case must be a path inside"):
        asyncio.run(check_life_cycle(case, tmp_path))


def test_stop_check_reports_hanging_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(life_cycle_module, "STOP_TIMEOUT_SECONDS", 0.2)

    with pytest.raises(ConformanceError) as error:
        asyncio.run(check_stop_without_start(case_of(kit_faults.HangsInStop), tmp_path))

    assert broken_rule(error) is Rule.STOP_WITHOUT_START
    assert "still running after 0.2 s" in str(error.value)


def test_stop_check_reports_stop_before_start(tmp_path: Path) -> None:
    with pytest.raises(ConformanceError) as error:
        asyncio.run(check_stop_without_start(case_of(kit_faults.NeedsStartBeforeStop), tmp_path))

    assert broken_rule(error) is Rule.STOP_WITHOUT_START
    assert "AssertionError: stop() before start()" in str(error.value)


def test_stop_check_reports_task_of_cancelled_start(tmp_path: Path) -> None:
    case = case_of(kit_faults.ForgetsTaskOfCancelledStart)

    with pytest.raises(ConformanceError) as error:
        asyncio.run(check_stop_after_failed_start(case, tmp_path))

    assert broken_rule(error) is Rule.STOP_TASKS
    assert "'early ticker'" in str(error.value)


def test_conformance_error_names_rule_and_value() -> None:
    error = ConformanceError(Rule.RESOURCE_ID, "item 0 has resource 'a/b'")

    assert str(error) == (
        "[observation.resource_id] resource ids must match "
        "kooperant.protocol.IDENTIFIER_PATTERN: item 0 has resource 'a/b'"
    )
    assert isinstance(error, AssertionError)


def test_io_watch_ignores_other_threads(tmp_path: Path) -> None:
    path = tmp_path / "other.txt"
    writer = threading.Thread(target=path.write_text, args=("x",))

    with watch_io() as events:
        writer.start()
        writer.join()

    assert events == []
    assert path.read_text() == "x"


def test_kit_exports_documented_names() -> None:
    missing = [name for name in adapter_kit.__all__ if not hasattr(adapter_kit, name)]

    assert missing == []
    assert "pytest" not in adapter_kit.__dict__
