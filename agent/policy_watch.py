"""Watching the owner's policy file, so an edit takes effect while the agent runs.

``PolicyWatcher`` reads the file's bytes once per poll (every second by default) and hashes them.
New content is applied only after the same SHA-256 was read on two consecutive polls, so a file
that an editor is still writing is not parsed half-written. The watcher parses exactly the bytes
it hashed with ``parse_policy`` and passes the new ``Policy`` to ``on_policy``, or the
``ConfigError`` to ``on_error``, once per distinct content. A missing or unreadable file counts
as invalid content. After an error the caller keeps its last valid policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from agent.errors import ConfigError, Problem
from agent.policy import Policy, parse_policy
from agent.waiting import wait_any
from kooperant.i18n import use_language

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
SHA256_PREFIX_LENGTH = 12


class PolicyWatcher:
    """Polls the policy file at ``path`` and reports each new stable content once."""

    def __init__(
        self,
        path: Path,
        on_policy: Callable[[Policy], None],
        on_error: Callable[[ConfigError], None],
        *,
        variables: Mapping[str, str] | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.path = path
        self._on_policy = on_policy
        self._on_error = on_error
        self._variables = variables
        self.poll_seconds = poll_seconds
        self._candidate: str | None = None
        self._handled: str | None = None
        self.reloads = 0
        """Number of valid contents applied so far."""

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            self.poll()
            await wait_any([stop], max_seconds=self.poll_seconds)

    def poll(self) -> None:
        """Read the file once; handle its content if it equals what the previous poll read."""
        content, problem = self._read()
        key = _sha256(content) if problem is None else f"unreadable: {problem.reason}"
        stable = key == self._candidate
        self._candidate = key
        if not stable or key == self._handled:
            return
        self._handled = key

        result = self._parse(content, problem)
        if isinstance(result, ConfigError):
            digest = "none" if problem is not None else key[:SHA256_PREFIX_LENGTH]
            logger.error(
                "Policy %s is invalid (sha256 %s); keeping the last valid policy:\n%s",
                self.path,
                digest,
                result,
            )
            self._on_error(result)
            return

        self.reloads += 1
        logger.info(
            "Policy %s loaded (sha256 %s, %d rules)",
            self.path,
            key[:SHA256_PREFIX_LENGTH],
            len(result.rules),
        )
        self._on_policy(result)

    def _read(self) -> tuple[bytes, Problem | None]:
        try:
            return self.path.read_bytes(), None
        except FileNotFoundError:
            return b"", Problem(None, "", "file not found; restore the file or check the path")
        except OSError as error:
            reason = f"cannot read the file ({error.strerror}); check its permissions"
            return b"", Problem(None, "", reason)

    def _parse(self, content: bytes, problem: Problem | None) -> Policy | ConfigError:
        if problem is not None:
            return ConfigError(self.path, [problem])
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = f"the file is not UTF-8 text (byte {error.start}); save it as UTF-8"
            return ConfigError(self.path, [Problem(None, "", reason)])
        try:
            # The problems go to the log, whose lines are English whatever the user's language.
            with use_language("en"):
                return parse_policy(text, self.path, self._variables)
        except ConfigError as error:
            return error


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
