"""Exceptions raised by the agent.

AgentError        root of everything the agent raises on purpose
├── ConfigError   the agent config or the policy file is invalid; the operator must edit the file
└── AuditLogError the local audit log cannot be opened, read or written; the operator must check
                  the file named in the message (permissions, free disk space, a damaged file)

``ConfigError`` lists every problem found, each with the file, the line and the key path, so the
operator can fix them all in one pass. Errors of PyYAML and pydantic are converted to it where the
files are read, with the original exception chained as the cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


class AgentError(Exception):
    """Root of the errors the agent raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid value: the line it is on (1-based), its key path and what is wrong with it.

    ``reason`` is user-facing text in the language that was current when the problem was built.
    """

    line: int | None
    key: str
    reason: str
    variable: str | None = field(default=None, kw_only=True)
    """The environment variable that set the value, in place of a line of the file."""

    def format(self, path: Path) -> str:
        where = str(path) if self.line is None else f"{path}:{self.line}"
        if self.variable is not None:
            where = f"{where}: {self.variable}"
        return f"{where}: {self.key}: {self.reason}" if self.key else f"{where}: {self.reason}"


class ConfigError(AgentError):
    """Raised when a config or policy file is invalid; the message has one line per problem."""

    def __init__(self, path: Path, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.format(path) for problem in self.problems))


class AuditLogError(AgentError):
    """Raised when the audit log at ``path`` cannot be opened, read or written."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"audit log {path}: {reason}")
