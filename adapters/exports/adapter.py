"""The base of every adapter that reads exports written by another program (ERP, spreadsheet).

An ``ExportAdapter`` follows one or more inputs (``ExportSource``: a file, or the newest file in a
folder) and calls ``parse`` in a worker thread whenever an input has a new, stable version. What
``parse`` returns replaces the adapter's observations. When a version cannot be read, the adapter
logs one error naming the file, line and problem, and keeps the observations of the last good read.
Those observations are marked stale in the agent's status once the newest input file is older than
``stale_after_hours``. A subclass sets ``export_description`` and implements ``parse``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import Field, field_validator

from adapters.base import (
    Adapter,
    AdapterContext,
    AdapterSettings,
    ConnectionState,
    Observation,
    SourceHealth,
    cancel_task,
)
from adapters.errors import ExportFormatError
from adapters.exports.progress import (
    LOG_INTERVAL_SECONDS,
    ProgressReporter,
    progress_logger,
    reporting,
)
from adapters.exports.sources import ExportSource, FolderSource
from adapters.exports.watched_file import FileVersion
from kooperant.protocol import ResourceKind

logger = logging.getLogger(__name__)


class ExportSettings(AdapterSettings):
    """Settings every export adapter has: where the export is and how it is followed."""

    path: Path = Field(
        description="The export file, or a folder whose newest matching file is read; "
        "relative to the agent config's folder."
    )
    pattern: str = Field(
        default="*", description="Glob of the files to read when 'path' is a folder, e.g. *.csv."
    )
    poll_interval_seconds: float = Field(default=5.0, gt=0, le=86400)
    stable_seconds: float = Field(
        default=2.0, ge=0, le=3600, description="How long a new version must stay unchanged."
    )
    stale_after_hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 366,
        description="Mark the data stale when the newest export file is older than this.",
    )

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        if not value.strip() or "/" in value or "\\" in value:
            raise ValueError(
                f"pattern {value!r} must be a file name glob such as '*.csv', without a folder"
            )
        return value


@dataclass(frozen=True, slots=True)
class ExportInput:
    """One input of an export adapter; ``key`` is the settings key it comes from."""

    key: str
    path: Path
    pattern: str = "*"
    required: bool = True
    whole_folder: bool = False
    """Read every matching file of the folder (``FolderSource``), not only the newest one."""
    description: str | None = None
    """Name of the input in log lines, e.g. "opening stock list"; default ``export_description``."""


ExportSettingsT = TypeVar("ExportSettingsT", bound=ExportSettings)


def _source_for(item: ExportInput, settings: ExportSettings) -> ExportSource | FolderSource:
    if item.whole_folder:
        return FolderSource(item.path, item.pattern, settings.stable_seconds)
    return ExportSource(item.path, item.pattern, settings.stable_seconds)


class ExportAdapter(Adapter[ExportSettingsT]):
    """Follow export files and turn each new version into observations; see the module docstring."""

    export_description: ClassVar[str] = "export"
    """The name of the export in log lines, such as "production plan" or "JPK_MAG file"."""
    withheld_until_read: ClassVar[frozenset[ResourceKind]] = frozenset()
    """Kinds whose offers would be wrong without this export, withheld until it is read once."""

    def __init__(self, name: str, settings: ExportSettingsT, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.path = self.resolve_path(settings.path)
        self._sources = {item.key: (item, _source_for(item, settings)) for item in self.inputs()}
        self._ready: dict[str, tuple[Path, FileVersion]] = {}
        self._observations: list[Observation] | None = None
        self._data_time: datetime | None = None
        self._problem: str | None = f"the {self.export_description} has not been read yet"
        self._problem_code: tuple[str, dict[str, str]] | None = None
        self._state = ConnectionState.CONNECTING
        self._state_since = context.clock()
        self._errors: dict[str, int] = {}
        self._reported: object = None
        self._stale_reported = False
        self._missing = False
        self._reparse_requested = False
        self._task: asyncio.Task[None] | None = None

    def inputs(self) -> list[ExportInput]:
        """Return the inputs to follow; the default is ``settings.path`` with ``pattern``."""
        return [ExportInput("path", self.path, self.settings.pattern)]

    @abstractmethod
    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        """Read the current file of each input, keyed by ``ExportInput.key``; runs in a thread.

        An optional input without a file is absent from ``files``. For an input with
        ``whole_folder`` the value is the configured path; list its files with
        ``adapters.exports.sources.matching_files``. Raise ``ExportFormatError``
        for an invalid export; ``OSError`` is handled by the caller.
        """

    def request_reparse(self) -> None:
        """Parse the current files again at the next poll, even if no input has changed.

        An adapter whose observations depend on the date as well as on the files, such as free
        days counted from today, calls this when the day changes.
        """
        self._reparse_requested = True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name=f"export {self.name}")

    def collect(self) -> list[Observation]:
        return list(self._observations or [])

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    def withheld_kinds(self) -> Mapping[ResourceKind, str]:
        if self._observations is not None:
            return {}
        reason = f"{self.export_description} {self.path} not read: {self._problem}"
        return dict.fromkeys(self.withheld_until_read, reason)

    def is_stale(self) -> bool:
        """Return whether the data in use comes from an export older than ``stale_after_hours``."""
        limit = self.settings.stale_after_hours
        if limit is None or self._data_time is None:
            return False
        return self.context.clock() - self._data_time > timedelta(hours=limit)

    def health(self) -> list[SourceHealth]:
        return [
            SourceHealth(
                source=str(self.path),
                state=self._state,
                since=self._state_since,
                last_data=self._data_time,
                errors=dict(self._errors),
                detail=self._problem,
                stale=self.is_stale(),
                detail_code=None if self._problem_code is None else self._problem_code[0],
                detail_values={} if self._problem_code is None else self._problem_code[1],
            )
        ]

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception as error:
                # A bug in a check must not end the polling task, which nothing would restart.
                message = f"unexpected {type(error).__name__}: {error}"
                self._fail(None, message, "check_failures", exc_info=error)
            self._check_stale()

            # A version that is settling is checked again as soon as it can be ready.
            delay = self.settings.poll_interval_seconds
            for _, source in self._sources.values():
                pending = source.seconds_until_stable()
                if pending is not None:
                    delay = min(delay, pending)
            await asyncio.sleep(delay)

    async def poll(self) -> None:
        """Check every input once and parse them when one has a new stable version."""
        changed = False
        for key, (item, source) in self._sources.items():
            try:
                version = await asyncio.to_thread(source.poll)
            except OSError as error:
                reason = error.strerror or str(error)
                message = f"cannot check {item.path}: {reason}"
                code = _os_error_code(error, item.path)
                self._fail(None, message, "check_failures", code=code)
                return
            current = source.current_file
            if current is None:
                if item.required:
                    self._report_missing(item)
                    return
                self._ready.pop(key, None)
                continue
            if version is not None:
                self._ready[key] = (current, version)
                changed = True

        if self._missing:
            self._back_from_missing()
        if not all(key in self._ready for key in self._required_keys()):
            return
        if changed or self._reparse_requested:
            self._reparse_requested = False
            await self._read()

    def _required_keys(self) -> list[str]:
        return [key for key, (item, _) in self._sources.items() if item.required]

    def _back_from_missing(self) -> None:
        """Mark the adapter connected again once every required input has a file.

        The data in use stays current unless a file changed, which the next read handles.
        """
        self._missing = False
        self._reported = None
        if self._observations is not None:
            self._problem = None
            self._problem_code = None
            self._set_state(ConnectionState.CONNECTED)
        logger.info("adapter %r: the %s is present again", self.name, self.export_description)

    async def _read(self) -> None:
        files = {key: path for key, (path, _) in self._ready.items()}
        versions = tuple(version for _, version in self._ready.values())
        try:
            observations = await asyncio.to_thread(self._parse_reporting, files)
            unchanged = await asyncio.to_thread(self._inputs_unchanged)
        except ExportFormatError as error:
            self._fail(versions, str(error), "invalid_exports")
            return
        except OSError as error:
            path = error.filename or self.path
            message = f"cannot read {path}: {error.strerror or error}"
            if isinstance(error, PermissionError):
                message += "; give the user the agent runs as read access to it"
            self._fail(versions, message, "io", code=_os_error_code(error, path))
            return
        except Exception as error:
            # A bug in a parser must not end the polling task, which nothing would restart.
            message = f"unexpected {type(error).__name__}: {error}"
            self._fail(versions, message, "parser_bugs", exc_info=error)
            return
        if not unchanged:
            # Written to again while it was being read; the next polls wait for it to settle.
            return

        self._observations = observations
        self._data_time = max(
            datetime.fromtimestamp(version.mtime_ns / 1e9, UTC) for version in versions
        )
        self._problem = None
        self._problem_code = None
        self._reported = None
        self._set_state(ConnectionState.CONNECTED)
        logger.info(
            "adapter %r: read %s from %s; observations: %d",
            self.name,
            self.export_description,
            ", ".join(str(path) for path in files.values()),
            len(observations),
        )
        self.context.notify_changed()

    def _parse_reporting(self, files: Mapping[str, Path]) -> list[Observation]:
        """Run ``parse`` with its reads reported to the terminal, or logged during a long parse."""
        callback = self.context.read_progress
        if callback is not None:
            reporter = ProgressReporter(callback)
        else:
            log = progress_logger(logger, self.name, self.export_description)
            reporter = ProgressReporter(log, interval_seconds=LOG_INTERVAL_SECONDS)
        with reporting(reporter):
            return self.parse(files)

    def _inputs_unchanged(self) -> bool:
        return all(
            self._sources[key][1].current_version() == version
            for key, (_, version) in self._ready.items()
        )

    def _report_missing(self, item: ExportInput) -> None:
        self._missing = True
        values = {"path": str(item.path), "pattern": item.pattern}
        if item.path.is_dir():
            where = f"not found: no file matching {item.pattern!r} in {item.path}"
            problem = f"no file matching {item.pattern!r} in the folder"
            code = "export.no_match"
        else:
            where = f"{item.path} not found"
            problem = "the file does not exist"
            code = "export.missing"
        # The withheld reason names the main path already; another input's path must stay.
        if item.path != self.path:
            problem = f"{item.path}: {problem}"
            code = "export.input_missing" if code == "export.missing" else code
        description = item.description or self.export_description
        message = f"{description} {where}"
        self._fail(
            "missing", message, "missing", logging.WARNING, problem=problem, code=(code, values)
        )

    def _fail(
        self,
        key: object,
        message: str,
        counter: str,
        level: int = logging.ERROR,
        *,
        problem: str | None = None,
        code: tuple[str, dict[str, str]] | None = None,
        exc_info: BaseException | None = None,
    ) -> None:
        """Record a failed check or read, logging it once per file version or message.

        ``problem``, when given, replaces ``message`` in the status and the withheld reason.
        ``code`` is the detail code and values for ``SourceHealth``, see agent/source_details.py.
        """
        self._problem = problem or message
        self._problem_code = code
        self._set_state(ConnectionState.DISCONNECTED)
        if key is None:
            key = message
        if key == self._reported:
            return
        self._reported = key
        self._errors[counter] = self._errors.get(counter, 0) + 1
        logger.log(
            level, "adapter %r: %s; %s", self.name, message, self._kept_data(), exc_info=exc_info
        )

    def _kept_data(self) -> str:
        if self._observations is not None:
            return f"the last {self.export_description} read stays in use"
        if self.withheld_until_read:
            kinds = ", ".join(sorted(self.withheld_until_read))
            return f"offers of kind {kinds} are withheld until it is read"
        return "nothing is offered from it until it is read"

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self._state:
            self._state = state
            self._state_since = self.context.clock()

    def _check_stale(self) -> None:
        stale = self.is_stale()
        if stale and not self._stale_reported:
            logger.warning(
                "adapter %r: the %s in use was exported at %s, more than %s h ago; "
                "it is marked stale until a newer export is read",
                self.name,
                self.export_description,
                self._data_time,
                self.settings.stale_after_hours,
            )
        elif not stale and self._stale_reported:
            logger.info("adapter %r: the %s is fresh again", self.name, self.export_description)
        self._stale_reported = stale


def _os_error_code(error: OSError, path: Path | str) -> tuple[str, dict[str, str]]:
    """Return the ``SourceHealth`` detail code and values for ``error`` on ``path``."""
    values = {"path": str(path), "reason": error.strerror or str(error)}
    if error.errno == errno.ENAMETOOLONG:
        return "export.name_too_long", values
    if isinstance(error, PermissionError):
        return "export.permission_denied", values
    return "export.unreadable", values
