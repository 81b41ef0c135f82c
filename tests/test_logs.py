"""``kooperant.logs``: one line per event, ISO 8601 times, masked secrets and rotation."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from agent.config import add_load_hook, load_config
from kooperant import logs
from kooperant.logs import (
    LogFileError,
    configure_logging,
    mask_secrets,
    register_secret,
    register_secrets_in,
)
from server.mail_settings import SmtpSettings
from server.settings import ServerSettings

# 2026-12-05T18:30:00.123+01:00 INFO kooperant.test: message
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"[\w.]+: "
)
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")

logger = logging.getLogger("kooperant.test")


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """Restore the root logger and the secret registry the test changes."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    secrets = set(logs._secrets)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logs._secrets.clear()
    logs._secrets.update(secrets)


def _raise_and_log(message: str) -> None:
    try:
        raise RuntimeError(message)
    except RuntimeError:
        logger.exception("Collect failed\nsecond line")


def test_text_format_one_line_with_traceback(tmp_path: Path) -> None:
    log_file = tmp_path / "kooperant.log"
    configure_logging(verbose=False, log_file=log_file)

    _raise_and_log("broken\nreally")
    logger.info("after")

    lines = log_file.read_text("utf-8").splitlines()
    assert len(lines) == 2
    assert TEXT_LINE.match(lines[0]), lines[0]
    assert " ERROR kooperant.test: Collect failed\\nsecond line | Traceback" in lines[0]
    assert "RuntimeError: broken\\nreally" in lines[0]
    assert TEXT_LINE.match(lines[1]), lines[1]
    assert lines[1].endswith(" INFO kooperant.test: after")


def test_json_format_parses_per_line(tmp_path: Path) -> None:
    log_file = tmp_path / "kooperant.log"
    configure_logging(verbose=True, log_file=log_file, log_format="json")

    _raise_and_log("broken")
    logger.debug("detail %d", 7)

    lines = log_file.read_text("utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert ISO_TIME.match(first["time"]), first["time"]
    assert first["level"] == "ERROR"
    assert first["logger"] == "kooperant.test"
    assert first["message"] == "Collect failed\nsecond line"
    assert first["exception"].startswith("Traceback")
    assert first["exception"].endswith("RuntimeError: broken")
    assert second["level"] == "DEBUG"
    assert second["message"] == "detail 7"
    assert "exception" not in second


def test_secret_masked_in_message_and_traceback(tmp_path: Path) -> None:
    log_file = tmp_path / "kooperant.log"
    configure_logging(verbose=False, log_file=log_file)
    register_secret("Hasło/z@spacją 1")

    logger.warning("login with %s failed", "Hasło/z@spacją 1")
    _raise_and_log("bad password Hasło/z@spacją 1")
    logger.warning("as URL: mqtt://user:Has%C5%82o%2Fz%40spacj%C4%85%201@host")
    logger.warning("as bytes: %r", "Hasło/z@spacją 1".encode())

    text = log_file.read_text("utf-8")
    assert "Hasło" not in text
    assert "Has%C5%82o" not in text
    assert "Has\\xc5\\x82o" not in text
    assert "as bytes: b'***'" in text
    assert "login with *** failed" in text
    assert "RuntimeError: bad password ***" in text


def test_url_credentials_masked(tmp_path: Path) -> None:
    log_file = tmp_path / "kooperant.log"
    configure_logging(verbose=False, log_file=log_file, log_format="json")

    logger.error("cannot open 'postgresql://kooperant:dbpass@127.0.0.1/kooperant' now")
    _raise_and_log("opc.tcp://operator:opcpass@10.0.0.5:4840 refused")

    event, failure = (json.loads(line) for line in log_file.read_text("utf-8").splitlines())
    assert event["message"] == "cannot open 'postgresql://kooperant:***@127.0.0.1/kooperant' now"
    assert "opcpass" not in failure["exception"]
    assert "opc.tcp://operator:***@10.0.0.5:4840 refused" in failure["exception"]


def test_mask_secrets_longest_first() -> None:
    register_secret("abc")
    register_secret("abcdef")

    assert mask_secrets("x abcdef y abc") == "x *** y ***"


def test_register_secret_ignores_empty() -> None:
    register_secret("")

    assert mask_secrets("plain text") == "plain text"


def test_rotation_at_size_limit(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "kooperant.log"
    configure_logging(verbose=False, log_file=log_file, max_bytes=1000, backup_count=2)

    for number in range(100):
        logger.info("event %03d %s", number, "x" * 40)

    files = sorted(path.name for path in log_file.parent.iterdir())
    assert files == ["kooperant.log", "kooperant.log.1", "kooperant.log.2"]
    for path in log_file.parent.iterdir():
        assert 0 < path.stat().st_size <= 1000, path
    assert "event 099" in log_file.read_text("utf-8")


def test_log_file_directory_rejected(tmp_path: Path) -> None:
    with pytest.raises(LogFileError) as raised:
        configure_logging(verbose=False, log_file=tmp_path)

    assert raised.value.path == tmp_path
    assert raised.value.reason == "Is a directory"


def test_log_file_under_regular_file_rejected(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    log_file = tmp_path / "plain" / "kooperant.log"

    with pytest.raises(LogFileError) as raised:
        configure_logging(verbose=False, log_file=log_file)

    assert raised.value.path == log_file
    assert raised.value.reason == "Not a directory"


@pytest.mark.parametrize(("max_bytes", "backup_count"), [(0, 5), (1000, 0)])
def test_sizes_below_one_rejected(tmp_path: Path, max_bytes: int, backup_count: int) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        configure_logging(
            verbose=False,
            log_file=tmp_path / "kooperant.log",
            max_bytes=max_bytes,
            backup_count=backup_count,
        )


def test_second_call_replaces_handler(tmp_path: Path) -> None:
    configure_logging(verbose=False, log_file=tmp_path / "first.log")
    configure_logging(verbose=False, log_file=tmp_path / "second.log")

    logger.info("only once")

    assert (tmp_path / "first.log").read_text("utf-8") == ""
    assert (tmp_path / "second.log").read_text("utf-8").count("only once") == 1


def test_verbose_sets_library_levels(tmp_path: Path) -> None:
    configure_logging(verbose=False, log_file=tmp_path / "kooperant.log")
    assert logging.getLogger("asyncua").level == logging.WARNING

    configure_logging(verbose=True, log_file=tmp_path / "kooperant.log")
    assert logging.getLogger("asyncua").getEffectiveLevel() == logging.DEBUG


class _Inner(BaseModel):
    password: SecretStr
    note: str = "visible"


class _Outer(BaseModel):
    key_password: SecretStr | None = None
    inner: tuple[_Inner, ...] = ()
    by_name: dict[str, _Inner] = {}


def test_register_secrets_in_nested_models() -> None:
    register_secrets_in(
        _Outer(
            key_password=SecretStr("top-secret"),
            inner=(_Inner(password=SecretStr("in-tuple")),),
            by_name={"a": _Inner(password=SecretStr("in-dict"))},
        )
    )

    assert mask_secrets("top-secret in-tuple in-dict visible") == "*** *** *** visible"


def test_agent_config_hook_registers_secrets(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    config = tmp_path / "agent.yaml"
    config.write_text(
        "member: acme\ncluster: c1\npolicy: policy.yaml\n"
        "broker: {url: 'mqtt://127.0.0.1:1', username: acme, password: broker-pass-1}\n"
        "adapters:\n"
        "  - {type: opcua, name: plc, url: 'opc.tcp://127.0.0.1:1',"
        " username: op, password: opc-pass-2}\n",
        encoding="utf-8",
    )
    add_load_hook(register_secrets_in)

    load_config(config)

    assert mask_secrets("broker-pass-1 opc-pass-2") == "*** ***"


def test_server_settings_secrets() -> None:
    settings = ServerSettings(
        database="postgresql://kooperant:db%40pass@127.0.0.1/kooperant",
        broker_url="mqtt://127.0.0.1:1883",
        broker_username="aggregator",
        broker_password="broker-pass",
        smtp=SmtpSettings(
            url="smtp://127.0.0.1:25",
            sender="kooperant@example.pl",
            username="mailer",
            password="smtp-pass",
        ),
    )

    assert set(settings.secrets()) == {"broker-pass", "smtp-pass", "db@pass"}


def test_server_settings_without_secrets() -> None:
    assert ServerSettings(database="sqlite:///kooperant.db").secrets() == ()
