"""Run the agent as a Windows service through pywin32, and install or remove that service.

The service control manager starts ``pythonservice.exe`` (from pywin32), which imports this
module and builds ``AgentService``. The class exists only where pywin32 is installed: it is made
on first access of ``agent.windows_service.AgentService``, so this module imports on Linux too.
Each installed service keeps its config path and log file under the service's registry key
(``HKLM\\SYSTEM\\CurrentControlSet\\Services\\NAME\\Parameters``), so several agents can share
the class under different service names.

NOTE: tested on Linux only, with fake pywin32 modules (tests/agent/test_windows_service.py);
nothing here has run on a real Windows service control manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, add_load_hook
from agent.runner import Agent
from kooperant.i18n import Catalog
from kooperant.logs import configure_logging, register_secrets_in

logger = logging.getLogger(__name__)

_ = Catalog.for_module(__name__)

SERVICE_CLASS = "agent.windows_service.AgentService"
DEFAULT_SERVICE_NAME = "kooperant-agent"
# How long the service control manager waits for the stop before it gives up, in milliseconds.
STOP_WAIT_HINT_MS = 30_000
# Recovery actions: restart after a minute, three times, and count failures afresh after a day.
RESTART_DELAY_MS = 60_000
RESTART_ATTEMPTS = 3
FAILURE_RESET_SECONDS = 86_400

ERROR_ACCESS_DENIED = 5
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_NOT_ACTIVE = 1062
ERROR_SERVICE_EXISTS = 1073

RunAgent = Callable[[AgentConfig, asyncio.Event], Awaitable[None]]


class WindowsServiceError(Exception):
    """Installing or removing the service failed; its message names the next step."""


@dataclass(frozen=True, kw_only=True)
class WindowsInstall:
    """The options of ``install-service`` on Windows."""

    name: str
    config: Path
    log_file: Path
    start: bool
    force: bool


def default_log_file(name: str) -> Path:
    """Return ``%ProgramData%\\kooperant\\NAME.log``, where services usually keep their logs."""
    program_data = os.environ.get("PROGRAMDATA", r"C:\ProgramData")
    return Path(program_data) / "kooperant" / f"{name}.log"


def install(options: WindowsInstall) -> list[str]:
    """Register the service with automatic delayed start and restart on failure."""
    win32service = importlib.import_module("win32service")
    win32serviceutil = importlib.import_module("win32serviceutil")

    if options.force and _exists(options.name):
        _remove(options.name)
    with _service_errors(options.name):
        win32serviceutil.InstallService(
            SERVICE_CLASS,
            options.name,
            f"kooperant agent ({options.name})",
            startType=win32service.SERVICE_AUTO_START,
            description=_("description", config=options.config),
            delayedstart=True,
        )
        win32serviceutil.SetServiceCustomOption(options.name, "config", str(options.config))
        win32serviceutil.SetServiceCustomOption(options.name, "log_file", str(options.log_file))
        _set_recovery_actions(options.name)
        if options.start:
            win32serviceutil.StartService(options.name)
    logger.info("Installed the Windows service %s", options.name)

    done = "started" if options.start else "installed"
    return [_(done, name=options.name), _("logs", log_file=options.log_file)]


def uninstall(name: str) -> list[str]:
    """Stop and remove the service; the config, audit log and log file stay."""
    if not _exists(name):
        raise WindowsServiceError(_("missing", name=name))
    _remove(name)
    logger.info("Removed the Windows service %s", name)
    return [_("removed", name=name)]


def _exists(name: str) -> bool:
    win32serviceutil = importlib.import_module("win32serviceutil")
    try:
        win32serviceutil.QueryServiceStatus(name)
    except Exception as error:
        if _winerror(error) == ERROR_SERVICE_DOES_NOT_EXIST:
            return False
        raise WindowsServiceError(_("failed", name=name, error=error)) from error
    return True


def _remove(name: str) -> None:
    win32serviceutil = importlib.import_module("win32serviceutil")
    with _service_errors(name):
        try:
            win32serviceutil.StopServiceWithDeps(name, waitSecs=STOP_WAIT_HINT_MS // 1000)
        except Exception as error:
            if _winerror(error) != ERROR_SERVICE_NOT_ACTIVE:
                raise
        win32serviceutil.RemoveService(name)


def _set_recovery_actions(name: str) -> None:
    """Set what ``sc failure NAME actions= restart/60000 ...`` and ``sc failureflag`` set."""
    win32service = importlib.import_module("win32service")
    manager = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_ALL_ACCESS)
    try:
        handle = win32service.OpenService(manager, name, win32service.SERVICE_ALL_ACCESS)
        try:
            restart = (win32service.SC_ACTION_RESTART, RESTART_DELAY_MS)
            actions = {
                "ResetPeriod": FAILURE_RESET_SECONDS,
                "RebootMsg": "",
                "Command": "",
                "Actions": [restart] * RESTART_ATTEMPTS,
            }
            win32service.ChangeServiceConfig2(
                handle, win32service.SERVICE_CONFIG_FAILURE_ACTIONS, actions
            )
            # Also restart when the agent stops with an error, not only when the process crashes.
            win32service.ChangeServiceConfig2(
                handle, win32service.SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, True
            )
        finally:
            win32service.CloseServiceHandle(handle)
    finally:
        win32service.CloseServiceHandle(manager)


@contextlib.contextmanager
def _service_errors(name: str) -> Iterator[None]:
    """Convert a pywin32 error into ``WindowsServiceError`` with the step to take next."""
    try:
        yield
    except WindowsServiceError:
        raise
    except Exception as error:
        code = _winerror(error)
        if code is None:
            raise
        if code == ERROR_ACCESS_DENIED:
            raise WindowsServiceError(_("not_admin")) from error
        if code == ERROR_SERVICE_EXISTS:
            raise WindowsServiceError(_("exists", name=name)) from error
        raise WindowsServiceError(_("failed", name=name, error=error)) from error


def _winerror(error: BaseException) -> int | None:
    code = getattr(error, "winerror", None)
    return code if isinstance(code, int) else None


class ServiceRunner:
    """Runs the agent's event loop on the service thread and stops it from another thread.

    ``SvcDoRun`` calls ``run``, which returns when the agent has stopped; ``SvcStop`` is called
    on the control handler's thread and calls ``request_stop``. A stop requested before the
    loop started ends the run as soon as it starts.
    """

    def __init__(self, run_agent: RunAgent | None = None) -> None:
        self._run_agent = run_agent or _run_agent
        self._lock = threading.Lock()
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def run(self, config: AgentConfig) -> None:
        asyncio.run(self._main(config))

    def request_stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)

    async def _main(self, config: AgentConfig) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._stop = stop
            if self._stop_requested:
                stop.set()
        try:
            await self._run_agent(config, stop)
        finally:
            with self._lock:
                self._loop = None
                self._stop = None


async def _run_agent(config: AgentConfig, stop: asyncio.Event) -> None:
    await Agent(config).run(stop)


def __getattr__(name: str) -> Any:
    if name == "AgentService":
        return _service_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _service_class() -> type:
    """Build the ``ServiceFramework`` subclass; pywin32 is imported here, on Windows only."""
    servicemanager = importlib.import_module("servicemanager")
    win32service = importlib.import_module("win32service")
    win32serviceutil = importlib.import_module("win32serviceutil")
    from agent.service_config import load_service_config

    class AgentService(win32serviceutil.ServiceFramework):  # type: ignore[misc,name-defined]
        _svc_name_ = DEFAULT_SERVICE_NAME
        _svc_display_name_ = "kooperant agent"

        def __init__(self, args: list[str]) -> None:
            # pythonservice.exe passes the installed service's name first. The base class names
            # the event log source after _svc_name_, so it is set per instance before.
            self._name = args[0] if args else DEFAULT_SERVICE_NAME
            self._svc_name_ = self._name
            super().__init__(args)
            self._runner = ServiceRunner()

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
            self._runner.request_stop()

        def SvcShutdown(self) -> None:
            """Stop the agent when Windows shuts down, so the audit log is closed cleanly."""
            self.SvcStop()

        def SvcDoRun(self) -> None:
            config_path = win32serviceutil.GetServiceCustomOption(self._name, "config")
            log_file = win32serviceutil.GetServiceCustomOption(
                self._name, "log_file", str(default_log_file(self._name))
            )
            configure_service_logging(Path(log_file))
            servicemanager.LogInfoMsg(f"{self._name}: starting with {config_path}")
            # ServiceFramework.SvcRun has reported SERVICE_RUNNING before calling this method.
            try:
                config = load_service_config(Path(config_path))
                self._runner.run(config)
            except Exception:
                # Re-raised because pywin32 then reports SERVICE_STOPPED with a non-zero exit
                # code, which triggers the recovery actions. The traceback goes to the log first.
                logger.exception("The agent service %s stopped with an error", self._name)
                raise
            logger.info("The agent service %s stopped", self._name)

    return AgentService


def configure_service_logging(log_file: Path) -> None:
    """Send the service's log records to ``log_file``, because a service has no console.

    Secrets of the config loaded after this call are masked in the log, as in the CLI.
    """
    configure_logging(verbose=False, log_file=log_file)
    add_load_hook(register_secrets_in)
