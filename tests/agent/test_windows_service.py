"""The Windows service, with fake pywin32 modules injected into ``sys.modules``.

These tests run on Linux: they check which pywin32 calls the install, uninstall and service
code makes, and that a real agent stops when the service control manager requests a stop. They
do not show that pywin32 on Windows accepts those calls.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agent import service_cli, windows_service
from agent.cli import app
from agent.config import AgentConfig
from agent.errors import ConfigError
from agent.service_config import load_service_config
from agent.windows_service import SERVICE_CLASS, ServiceRunner
from tests.agent.service_samples import write_config


class FakeWindowsError(Exception):
    """Stands for ``pywintypes.error``, which carries the Windows error code."""

    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror = winerror


class FakeServiceManager:
    """The service control manager's state, and the calls the code under test made."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        self.running: set[str] = set()
        self.calls: list[tuple[str, Any]] = []
        self.denied = False

    def modules(self) -> dict[str, types.ModuleType]:
        win32service = types.ModuleType("win32service")
        for name, value in {
            "SERVICE_AUTO_START": 2,
            "SC_MANAGER_ALL_ACCESS": 0xF003F,
            "SERVICE_ALL_ACCESS": 0xF01FF,
            "SC_ACTION_RESTART": 1,
            "SERVICE_CONFIG_FAILURE_ACTIONS": 2,
            "SERVICE_CONFIG_FAILURE_ACTIONS_FLAG": 4,
            "SERVICE_STOP_PENDING": 3,
            "SERVICE_RUNNING": 4,
        }.items():
            setattr(win32service, name, value)
        win32service.OpenSCManager = lambda *args: "manager"  # type: ignore[attr-defined]
        win32service.OpenService = lambda manager, name, access: name  # type: ignore[attr-defined]
        win32service.CloseServiceHandle = lambda handle: None  # type: ignore[attr-defined]
        win32service.ChangeServiceConfig2 = self.change_config  # type: ignore[attr-defined]

        util = types.ModuleType("win32serviceutil")
        util.InstallService = self.install  # type: ignore[attr-defined]
        util.SetServiceCustomOption = self.set_option  # type: ignore[attr-defined]
        util.GetServiceCustomOption = self.get_option  # type: ignore[attr-defined]
        util.StartService = lambda name: self.record("StartService", name)  # type: ignore[attr-defined]
        util.QueryServiceStatus = self.query  # type: ignore[attr-defined]
        util.StopServiceWithDeps = self.stop  # type: ignore[attr-defined]
        util.RemoveService = self.remove  # type: ignore[attr-defined]
        util.ServiceFramework = FakeServiceFramework  # type: ignore[attr-defined]

        manager = types.ModuleType("servicemanager")
        manager.LogInfoMsg = lambda text: self.record("LogInfoMsg", text)  # type: ignore[attr-defined]
        return {"win32service": win32service, "win32serviceutil": util, "servicemanager": manager}

    def record(self, call: str, value: Any) -> None:
        self.calls.append((call, value))

    def install(self, class_string: str, name: str, display: str, **options: Any) -> None:
        if self.denied:
            raise FakeWindowsError(5, "OpenSCManager", "Access is denied.")
        if name in self.services:
            raise FakeWindowsError(1073, "CreateService", "The specified service already exists.")
        self.services[name] = {"class": class_string, "display": display, **options}
        self.record("InstallService", name)

    def set_option(self, name: str, option: str, value: str) -> None:
        self.services[name][option] = value

    def get_option(self, name: str, option: str, default: str | None = None) -> str | None:
        return self.services[name].get(option, default)

    def change_config(self, handle: str, level: int, value: Any) -> None:
        self.services[handle][f"config2.{level}"] = value

    def query(self, name: str) -> tuple[int, ...]:
        if name not in self.services:
            raise FakeWindowsError(1060, "OpenService", "The specified service does not exist.")
        return (16, 4 if name in self.running else 1, 0, 0, 0, 0, 0)

    def stop(self, name: str, waitSecs: int) -> None:
        if name not in self.running:
            raise FakeWindowsError(1062, "ControlService", "The service has not been started.")
        self.running.discard(name)
        self.record("StopServiceWithDeps", (name, waitSecs))

    def remove(self, name: str) -> None:
        del self.services[name]
        self.record("RemoveService", name)


class FakeServiceFramework:
    """Stands for ``win32serviceutil.ServiceFramework``; records the reported states.

    ``SvcRun`` reports the states in the order pywin32's does around ``SvcDoRun``.
    """

    _svc_name_ = "unset"

    def __init__(self, args: list[str]) -> None:
        self.reported: list[tuple[int, int]] = []
        self.event_source = self._svc_name_

    def ReportServiceStatus(self, status: int, waitHint: int = 5000) -> None:
        self.reported.append((status, waitHint))

    def SvcRun(self) -> None:
        self.ReportServiceStatus(4)
        self.SvcDoRun()  # type: ignore[attr-defined]
        self.ReportServiceStatus(3)


@pytest.fixture
def scm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServiceManager]:
    manager = FakeServiceManager()
    for name, module in manager.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(service_cli, "is_windows", lambda: True)
    windows_service._service_class.cache_clear()
    yield manager
    windows_service._service_class.cache_clear()


def invoke(*arguments: str, language: str = "en") -> Result:
    return CliRunner().invoke(app, list(arguments), env={"KOOPERANT_LANG": language})


def test_install_registers_service(tmp_path: Path, scm: FakeServiceManager) -> None:
    config = write_config(tmp_path)
    log_file = tmp_path / "logs" / "agent.log"

    result = invoke("install-service", "--config", str(config), "--log-file", str(log_file))

    assert result.exit_code == 0, result.output
    service = scm.services["kooperant-agent"]
    assert service["class"] == SERVICE_CLASS
    assert service["startType"] == 2
    assert service["delayedstart"] is True
    assert service["config"] == str(config)
    assert service["log_file"] == str(log_file)
    assert service["config2.2"] == {
        "ResetPeriod": 86_400,
        "RebootMsg": "",
        "Command": "",
        "Actions": [(1, 60_000)] * 3,
    }
    assert service["config2.4"] is True
    assert ("StartService", "kooperant-agent") in scm.calls
    assert f"Log file: {log_file}" in result.stdout


def test_install_default_log_file_no_start(
    tmp_path: Path, scm: FakeServiceManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROGRAMDATA", str(tmp_path / "ProgramData"))
    config = write_config(tmp_path)

    result = invoke("install-service", "--config", str(config), "--name", "hala2", "--no-start")

    assert result.exit_code == 0, result.output
    expected = tmp_path / "ProgramData" / "kooperant" / "hala2.log"
    assert scm.services["hala2"]["log_file"] == str(expected)
    assert not any(call == "StartService" for call, _ in scm.calls)
    assert "sc start hala2" in result.stdout


def test_install_not_admin(tmp_path: Path, scm: FakeServiceManager) -> None:
    scm.denied = True
    config = write_config(tmp_path)

    result = invoke("install-service", "--config", str(config), language="pl")

    assert result.exit_code == 1
    assert "Uruchom jako administrator" in result.stderr
    assert "Traceback" not in result.output


def test_install_existing_service(tmp_path: Path, scm: FakeServiceManager) -> None:
    config = write_config(tmp_path)
    scm.services["kooperant-agent"] = {"class": "other.Service"}
    scm.running.add("kooperant-agent")

    refused = invoke("install-service", "--config", str(config))
    forced = invoke("install-service", "--config", str(config), "--force")

    assert refused.exit_code == 1
    assert "A service named kooperant-agent already exists" in refused.stderr
    assert forced.exit_code == 0, forced.output
    assert ("StopServiceWithDeps", ("kooperant-agent", 30)) in scm.calls
    assert scm.services["kooperant-agent"]["class"] == SERVICE_CLASS


def test_install_print_rejected(tmp_path: Path, scm: FakeServiceManager) -> None:
    config = write_config(tmp_path)

    result = invoke("install-service", "--config", str(config), "--print")

    assert result.exit_code == 1
    assert "works on Linux only" in result.stderr
    assert scm.services == {}


def test_uninstall_stops_and_removes(tmp_path: Path, scm: FakeServiceManager) -> None:
    scm.services["kooperant-agent"] = {"class": SERVICE_CLASS}
    scm.running.add("kooperant-agent")

    result = invoke("uninstall-service")

    assert result.exit_code == 0, result.output
    assert scm.calls == [
        ("StopServiceWithDeps", ("kooperant-agent", 30)),
        ("RemoveService", "kooperant-agent"),
    ]
    assert "The config, the audit log and the log file stay" in result.stdout


def test_uninstall_stopped_service(scm: FakeServiceManager) -> None:
    scm.services["hala2"] = {"class": SERVICE_CLASS}

    result = invoke("uninstall-service", "--name", "hala2.service")

    assert result.exit_code == 0, result.output
    assert scm.calls == [("RemoveService", "hala2")]


def test_uninstall_missing_service(scm: FakeServiceManager) -> None:
    result = invoke("uninstall-service", "--name", "hala2")

    assert result.exit_code == 1
    assert "There is no service hala2" in result.stderr
    assert scm.calls == []


def test_module_imports_without_pywin32() -> None:
    assert windows_service.SERVICE_CLASS == "agent.windows_service.AgentService"
    with pytest.raises(AttributeError):
        _ = windows_service.NoSuchName  # type: ignore[attr-defined]


def test_runner_stop_from_other_thread() -> None:
    started = threading.Event()

    async def run_agent(config: AgentConfig, stop: Any) -> None:
        started.set()
        await stop.wait()

    runner = ServiceRunner(run_agent)
    thread = threading.Thread(target=runner.run, args=(None,))
    thread.start()
    assert started.wait(5)

    runner.request_stop()
    thread.join(5)

    assert not thread.is_alive()


def test_runner_stop_before_start() -> None:
    async def run_agent(config: AgentConfig, stop: Any) -> None:
        await stop.wait()

    runner = ServiceRunner(run_agent)
    runner.request_stop()
    thread = threading.Thread(target=runner.run, args=(None,))
    thread.start()
    thread.join(5)

    assert not thread.is_alive()


def test_service_runs_and_stops_real_agent(
    tmp_path: Path, scm: FakeServiceManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SvcDoRun runs the real agent against an unreachable broker; SvcStop ends it in time."""
    logged: list[Path] = []
    monkeypatch.setattr(windows_service, "configure_service_logging", logged.append)
    config = write_config(tmp_path, extra="status: {enabled: false}\n")
    scm.services["hala2"] = {"config": str(config), "log_file": str(tmp_path / "hala2.log")}
    service = windows_service.AgentService(["hala2"])
    thread = threading.Thread(target=service.SvcRun)
    thread.start()
    deadline = time.monotonic() + 10
    while service._runner._loop is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service._runner._loop is not None, "the agent's event loop did not start"
    time.sleep(0.5)

    started_stop = time.monotonic()
    service.SvcStop()
    thread.join(windows_service.STOP_WAIT_HINT_MS / 1000)

    assert not thread.is_alive()
    assert time.monotonic() - started_stop < 10
    assert service.reported[0] == (4, 5000)
    assert (3, windows_service.STOP_WAIT_HINT_MS) in service.reported
    assert service.event_source == "hala2"
    assert logged == [tmp_path / "hala2.log"]
    assert ("LogInfoMsg", f"hala2: starting with {config}") in scm.calls


def test_service_invalid_config_raises(
    tmp_path: Path, scm: FakeServiceManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(windows_service, "configure_service_logging", lambda path: None)
    config = write_config(tmp_path, broker_url="mqt://x")
    scm.services["hala2"] = {"config": str(config)}
    service = windows_service.AgentService(["hala2"])

    with pytest.raises(ConfigError, match=r"broker\.url"):
        service.SvcRun()

    assert service.reported == [(4, 5000)]


def test_service_logging_writes_file(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    log_file = tmp_path / "logs" / "agent.log"
    try:
        windows_service.configure_service_logging(log_file)
        logging.getLogger("agent.test").warning("broker lost, retry in 5 s")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)

    assert "broker lost, retry in 5 s" in log_file.read_text(encoding="utf-8")


def test_load_service_config_matches_run(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    loaded = load_service_config(config)

    assert loaded.source == config
    assert loaded.member == "acme"


def test_service_shutdown_stops_agent(scm: FakeServiceManager) -> None:
    service = windows_service.AgentService(["hala2"])
    stopped: list[bool] = []
    service._runner.request_stop = lambda: stopped.append(True)

    service.SvcShutdown()

    assert stopped == [True]
    assert service.reported == [(3, windows_service.STOP_WAIT_HINT_MS)]
