"""The description of one adapter for the kit (``AdapterCase``) and the context built from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.base import Adapter, AdapterContext, Observation

# Defaults for a small adapter on an ordinary computer; a case may raise them.
START_LIMIT_SECONDS = 5.0
CALL_LIMIT_SECONDS = 0.1
LOOP_BLOCK_LIMIT_SECONDS = 0.5
EXPECT_WITHIN_SECONDS = 5.0
RUN_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True)
class AdapterCase:
    """One adapter class with sample settings, the files it reads and what it should report.

    ``files`` maps paths relative to the config folder to their contents, which the kit writes
    before ``start()``. Relative paths in the settings resolve against that folder, as
    ``Adapter.resolve_path`` does. ``expect`` receives each ``collect()`` result until it returns
    true; without it, the first result is enough. The adapter runs for at least
    ``run_seconds`` while the kit collects and watches the event loop.
    """

    adapter_class: type[Adapter[Any]]
    settings: Mapping[str, Any]
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    expect: Callable[[list[Observation]], bool] | None = None
    expect_within_seconds: float = EXPECT_WITHIN_SECONDS
    run_seconds: float = RUN_SECONDS
    start_limit_seconds: float = START_LIMIT_SECONDS
    call_limit_seconds: float = CALL_LIMIT_SECONDS
    loop_block_limit_seconds: float = LOOP_BLOCK_LIMIT_SECONDS
    instance_name: str = "conformance"
    member: str = "kit-member"
    timezone: str = "Europe/Warsaw"


class ChangeCounter:
    """A ``notify_changed`` callback that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def make_context(
    config_dir: Path, *, member: str = "kit-member", timezone: str = "Europe/Warsaw"
) -> AdapterContext:
    """Build an adapter context on ``config_dir`` with the real clock and a ``ChangeCounter``."""
    return AdapterContext(
        member=member,
        timezone=ZoneInfo(timezone),
        config_dir=config_dir,
        notify_changed=ChangeCounter(),
        clock=lambda: datetime.now(UTC),
    )


def case_context(case: AdapterCase, config_dir: Path) -> AdapterContext:
    """Build the context for ``case`` on ``config_dir``."""
    return make_context(config_dir, member=case.member, timezone=case.timezone)


def write_files(config_dir: Path, files: Mapping[str, str | bytes]) -> None:
    """Create ``config_dir`` and write ``files`` into it; text is written as UTF-8."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ValueError(
                f"file {relative!r} of the case must be a path inside the config folder"
            )
        path = config_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
