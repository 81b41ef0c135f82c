"""``${file:PATH}`` in agent.yaml: the secret is read from a file and never shown in errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError

SECRET = "tajne-Haslo-7"
POLICY = "share: []\n"


def write_config(folder: Path, password: str) -> Path:
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    path = folder / "agent.yaml"
    path.write_text(
        "member: acme\n"
        "cluster: pomorskie\n"
        "broker:\n"
        "  url: mqtt://127.0.0.1:1883\n"
        "  username: acme\n"
        f"  password: {password}\n"
        "policy: policy.yaml\n",
        encoding="utf-8",
    )
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return str(caught.value)


def test_secret_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "broker-password").write_text(SECRET + "\n", encoding="utf-8")
    path = write_config(tmp_path, "${file:secrets/broker-password}")

    config = load_config(path, {})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == SECRET


def test_secret_file_absolute_path(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.txt"
    secret.write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "${file:" + str(secret) + "}")

    config = load_config(path, {})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == SECRET


def test_secret_file_strips_one_newline(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(SECRET.encode() + b"\r\n\r\n")
    path = write_config(tmp_path, "${file:pw}")

    config = load_config(path, {})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == SECRET + "\r\n"


def test_secret_file_content_not_expanded(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("${HOME}", encoding="utf-8")
    path = write_config(tmp_path, "${file:pw}")

    config = load_config(path, {"HOME": "/root"})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == "${HOME}"


def test_secret_file_missing(tmp_path: Path) -> None:
    path = write_config(tmp_path, "${file:secrets/broker-password}")

    message = error_of(path)

    missing = tmp_path / "secrets" / "broker-password"
    assert message == (
        f"{path}:6: broker.password: secret file {missing} not found; create it or correct the path"
    )


def test_secret_file_empty_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, "${file:}")

    message = error_of(path)

    assert message.startswith(f"{path}:6: broker.password: ${{file:}} names no file;")


def test_secret_file_empty(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n", encoding="utf-8")
    path = write_config(tmp_path, "${file:pw}")

    message = error_of(path)

    assert message == (
        f"{path}:6: broker.password: secret file {tmp_path / 'pw'} is empty; "
        "write the secret into it"
    )


def test_secret_file_is_folder(tmp_path: Path) -> None:
    (tmp_path / "pw").mkdir()
    path = write_config(tmp_path, "${file:pw}")

    message = error_of(path)

    assert f"secret file {tmp_path / 'pw'} is a folder" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_secret_file_unreadable(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(SECRET, encoding="utf-8")
    secret.chmod(0)
    path = write_config(tmp_path, "${file:pw}")

    message = error_of(path)

    assert f"permission denied reading the secret file {secret}; give the user" in message
    assert SECRET not in message


def test_secret_file_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "${file:pw/inner}")

    message = error_of(path)

    inner = tmp_path / "pw" / "inner"
    assert f"secret file {inner} not found because {tmp_path / 'pw'} is a file," in message


def test_secret_file_below_a_file_polish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    (tmp_path / "agent.yaml.d").write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "${file:agent.yaml.d/x}")

    message = error_of(path)

    inner = tmp_path / "agent.yaml.d" / "x"
    assert (
        f"nie ma pliku z sekretem {inner}, bo {tmp_path / 'agent.yaml.d'} jest plikiem" in message
    )
    assert "Not a directory" not in message
    assert "uprawnienia" not in message


def test_secret_file_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(b"\xff\xfe" + SECRET.encode())
    path = write_config(tmp_path, "${file:pw}")

    message = error_of(path)

    assert f"secret file {tmp_path / 'pw'} is not UTF-8 text" in message
    assert SECRET not in message


def test_secret_absent_from_invalid_value_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "${file:pw}")
    text = path.read_text(encoding="utf-8").replace("  username: acme\n", "")
    path.write_text(text, encoding="utf-8")

    message = error_of(path)

    assert "broker.password" in message
    assert SECRET not in message


def test_secret_file_and_variable_together(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("part", encoding="utf-8")
    path = write_config(tmp_path, "${file:pw}-${SUFFIX}")

    config = load_config(path, {"SUFFIX": "two"})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == "part-two"


def test_secret_files_lists_file_references(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "broker-password").write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "${file:secrets/broker-password}")

    config = load_config(path, {})

    assert config.secret_files == (tmp_path / "secrets" / "broker-password",)
    assert SECRET not in repr(config.secret_files)


def test_secret_files_lists_file_variable(tmp_path: Path) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text(SECRET, encoding="utf-8")
    path = write_config(tmp_path, "null")
    variables = {"KOOPERANT_AGENT__BROKER__PASSWORD_FILE": "password.txt"}

    config = load_config(path, variables)

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == SECRET
    assert config.secret_files == (secret,)


def test_secret_files_lists_policy_reference(tmp_path: Path) -> None:
    (tmp_path / "group.txt").write_text("partner-1", encoding="utf-8")
    path = write_config(tmp_path, "null")
    policy = "groups:\n  partners: ['${file:group.txt}']\nshare: []\n"
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")

    config = load_config(path, {})

    assert config.sharing_policy.groups == {"partners": frozenset({"partner-1"})}
    assert config.secret_files == (tmp_path / "group.txt",)


def test_secret_files_empty_without_references(tmp_path: Path) -> None:
    path = write_config(tmp_path, "null")

    config = load_config(path, {"SOME_PASSWORD": SECRET})

    assert config.secret_files == ()
