"""Configs and a fake ``SystemHost`` shared by the service tests."""

from __future__ import annotations

import os
from pathlib import Path

from agent.linux_service import ServiceError, SystemHost
from agent.service_access import UserIds

POLICY = "share:\n  - resource: cnc-1\n    fields: [name, free_hours]\n"


def write_config(
    folder: Path,
    *,
    broker_url: str = "mqtt://127.0.0.1:1",
    extra: str = "",
    adapters: str = "",
) -> Path:
    """Write a valid agent config and its policy into ``folder``; return the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = folder / "agent.yaml"
    text = (
        f"member: acme\ncluster: pomorskie-metal\nbroker:\n  url: {broker_url}\n"
        "policy: policy.yaml\nresources:\n  cnc-1: {name: DMU 50, kind: machine}\n"
        f"{extra}"
    )
    if adapters:
        text += f"adapters:\n{adapters}"
    path.write_text(text, encoding="utf-8")
    return path


class FakeHost(SystemHost):
    """Records commands instead of running them; ``useradd`` adds the user to ``users``."""

    def __init__(self, *, root: bool = True, users: dict[str, UserIds] | None = None) -> None:
        self.root = root
        self.users = dict(users or {})
        self.commands: list[list[str]] = []
        self.failing: dict[str, str] = {}
        """Commands (joined by spaces) that fail, with their stderr."""
        # The user useradd creates; the current user's ids, so every test path is accessible.
        self.new_user_uid = os.getuid()

    def is_root(self) -> bool:
        return self.root

    def user_ids(self, name: str) -> UserIds | None:
        return self.users.get(name)

    def run(self, command: list[str]) -> None:
        self.commands.append(command)
        joined = " ".join(command)
        if joined in self.failing:
            raise ServiceError(f"{joined} failed with exit status 1:\n{self.failing[joined]}")
        if command[0] == "useradd":
            name = command[-1]
            uid = self.new_user_uid
            self.users[name] = UserIds(name, uid, frozenset({uid}), os.getgid())
