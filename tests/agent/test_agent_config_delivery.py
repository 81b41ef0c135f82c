"""Loading the delivery keys of ``agent.yaml``: broker protocol, session, TLS files, outbox."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError

POLICY = "share:\n  - resource: cnc-1\n    fields: [name]\n"


def write(folder: Path, broker: str, extra: str = "") -> Path:
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = folder / "agent.yaml"
    text = (
        "member: acme\ncluster: pomorskie-metal\npolicy: policy.yaml\nbroker:\n"
        + textwrap.indent(textwrap.dedent(broker).strip("\n"), "  ")
        + "\n"
        + extra
    )
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return str(caught.value)


def test_delivery_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "url: mqtt://127.0.0.1"), {})

    assert config.broker.protocol == "auto"
    assert config.broker.session_expiry_seconds == 604_800
    assert config.broker.tls is None
    assert config.outbox.max_megabytes == 100
    assert config.outbox.max_age_hours == 168
    assert config.outbox.limits().max_bytes == 100_000_000
    assert config.outbox.limits().max_age == timedelta(hours=168)


def test_protocol_read_as_text(tmp_path: Path) -> None:
    unquoted = load_config(write(tmp_path, "url: mqtt://h\nprotocol: 5"), {})
    older = load_config(write(tmp_path, "url: mqtt://h\nprotocol: '3.1.1'"), {})

    assert unquoted.broker.protocol == "5"
    assert older.broker.protocol == "3.1.1"


def test_unknown_protocol_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "url: mqtt://h\nprotocol: 4")

    message = config_error(path)

    assert message.startswith(f"{path}:6: broker.protocol: ")
    assert "'5'" in message
    assert "'3.1.1'" in message


def test_negative_session_expiry_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "url: mqtt://h\nsession_expiry_seconds: -1")

    message = config_error(path)

    assert message.startswith(f"{path}:6: broker.session_expiry_seconds: ")


def test_tls_files_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "agent.pem", "agent.key"):
        (tmp_path / "certs" / name).write_text("-----BEGIN-----\n", encoding="utf-8")
    broker = """
        url: mqtts://broker.example
        tls:
          ca_file: certs/ca.pem
          cert_file: certs/agent.pem
          key_file: certs/agent.key
          key_password: s3cret-key
    """

    config = load_config(write(tmp_path, broker), {})

    tls = config.broker.tls
    assert tls is not None
    assert tls.ca_file is not None
    assert config.resolve(tls.ca_file) == tmp_path / "certs" / "ca.pem"
    assert tls.key_password is not None
    assert tls.key_password.get_secret_value() == "s3cret-key"
    assert "s3cret-key" not in repr(config)


def test_tls_missing_file_named(tmp_path: Path) -> None:
    broker = """
        url: mqtts://broker.example
        tls:
          ca_file: certs/ca.pem
    """
    path = write(tmp_path, broker)

    message = config_error(path)

    assert message == (
        f"{path}:7: broker.tls.ca_file: file {tmp_path / 'certs' / 'ca.pem'} not found; a "
        "relative path starts at the config file's folder"
    )


def test_tls_missing_file_in_polish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    path = write(tmp_path, "url: mqtts://broker.example\ntls: {cert_file: /no/agent.pem}")

    message = config_error(path)

    assert message == (
        f"{path}:6: broker.tls.cert_file: nie ma pliku /no/agent.pem; ścieżka względna zaczyna "
        "się w katalogu pliku konfiguracji"
    )


def test_tls_without_mqtts_rejected(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x", encoding="utf-8")
    path = write(tmp_path, "url: mqtt://broker.example\ntls: {ca_file: ca.pem}")

    message = config_error(path)

    assert message == (
        f"{path}:4: broker: broker.tls works only with an mqtts:// URL; change broker.url to "
        "mqtts://HOST[:PORT] or remove the tls section"
    )


def test_tls_key_without_cert_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "url: mqtts://broker.example\ntls: {key_file: agent.key}")

    message = config_error(path)

    assert message == (
        f"{path}:6: broker.tls: key_file needs cert_file: give the client certificate the key "
        "belongs to"
    )


def test_tls_unknown_key_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "url: mqtts://broker.example\ntls: {verify: false}")

    message = config_error(path)

    assert message.startswith(f"{path}:6: broker.tls.verify: ")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("outbox: {max_megabytes: 0.5}", "outbox.max_megabytes"),
        ("outbox: {max_age_hours: 0}", "outbox.max_age_hours"),
        ("outbox: {max_age_hours: .nan}", "outbox.max_age_hours"),
        ("outbox: {size: 3}", "outbox.size"),
    ],
)
def test_outbox_bad_values_rejected(tmp_path: Path, section: str, key: str) -> None:
    path = write(tmp_path, "url: mqtt://h", section + "\n")

    message = config_error(path)

    assert message.startswith(f"{path}:6: {key}: ")


def test_outbox_values_read(tmp_path: Path) -> None:
    path = write(tmp_path, "url: mqtt://h", "outbox: {max_megabytes: 2.5, max_age_hours: 24}\n")

    limits = load_config(path, {}).outbox.limits()

    assert limits.max_bytes == 2_500_000
    assert limits.max_age == timedelta(hours=24)


def test_password_without_username_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, 'url: mqtt://broker.example\npassword: "s3cret"')

    message = config_error(path)

    assert message == (
        f"{path}:6: broker.password: a password needs a user name: add broker.username or "
        "remove broker.password"
    )
    assert "s3cret" not in message


def test_password_without_username_in_polish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    path = write(tmp_path, "url: mqtt://broker.example\npassword: s3cret")

    message = config_error(path)

    assert message.startswith(f"{path}:6: broker.password: hasło wymaga nazwy użytkownika")


def test_password_with_username_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "url: mqtt://broker.example\nusername: acme\npassword: s3cret")

    config = load_config(path, {})

    assert config.broker.username == "acme"
    assert config.broker.password is not None
