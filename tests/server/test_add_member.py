"""Mosquitto password lines and files, and ``kooperant server add-member``."""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.config import load_config
from server.broker_accounts import (
    AGGREGATOR_USER,
    PasswordFileChange,
    check_mosquitto_password,
    mosquitto_password_line,
    set_password,
)
from server.errors import InvalidSettingError, MosquittoPasswordFileError
from server.storage import Storage
from tests.conftest import REPO_ROOT
from tests.server.helpers import T0, machine_offer

LINE_FORMAT = re.compile(
    r"(?P<user>[^:]+):\$7\$101\$(?P<salt>[A-Za-z0-9+/=]+)\$(?P<key>[A-Za-z0-9+/=]+)"
)

needs_mosquitto_passwd = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed"
)


def run_cli(
    *arguments: str, language: str = "en", verbose: bool = False
) -> subprocess.CompletedProcess[str]:
    # With --verbose, debug logs reach stderr, where no password may appear.
    options = ["--verbose"] if verbose else []
    return subprocess.run(
        [sys.executable, "-m", "kooperant", *options, "server", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "KOOPERANT_LANG": language},
        timeout=60,
        check=False,
    )


def make_passwd_file(path: Path, user: str, password: str) -> str:
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), user, password], check=True)
    return path.read_text().strip()


def password_from(stdout: str) -> str:
    password = yaml.safe_load(stdout)["broker"]["password"]
    assert isinstance(password, str)
    return password


# Password lines


def test_password_line_format() -> None:
    line = mosquitto_password_line("acme", "secret")

    found = LINE_FORMAT.fullmatch(line)
    assert found is not None, line
    assert found["user"] == "acme"
    assert len(base64.b64decode(found["salt"])) == 12
    assert len(base64.b64decode(found["key"])) == 64


def test_password_line_salt_differs_each_call() -> None:
    first = mosquitto_password_line("acme", "secret")
    second = mosquitto_password_line("acme", "secret")

    assert first != second


@needs_mosquitto_passwd
def test_password_line_equals_mosquitto_passwd(tmp_path: Path) -> None:
    reference = make_passwd_file(tmp_path / "passwd", "acme", "zażółć-secret")
    found = LINE_FORMAT.fullmatch(reference)
    assert found is not None, reference
    salt = base64.b64decode(found["salt"])

    line = mosquitto_password_line("acme", "zażółć-secret", salt=salt)

    assert line == reference


@needs_mosquitto_passwd
def test_check_password_reads_mosquitto_passwd_line(tmp_path: Path) -> None:
    line = make_passwd_file(tmp_path / "passwd", "acme", "secret")

    assert check_mosquitto_password(line, "secret")
    assert not check_mosquitto_password(line, "Secret")


@needs_mosquitto_passwd
def test_check_password_reads_mosquitto_passwd_update(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("acme:plain-secret\n")
    subprocess.run(["mosquitto_passwd", "-U", str(path)], check=True)

    line = path.read_text().strip()

    assert LINE_FORMAT.fullmatch(line), line
    assert check_mosquitto_password(line, "plain-secret")


def test_check_password_own_line() -> None:
    line = mosquitto_password_line("acme", "secret")

    assert check_mosquitto_password(line + "\n", "secret")
    assert not check_mosquitto_password(line, "secret ")


@pytest.mark.parametrize(
    "line",
    [
        "acme:plain-secret",
        "acme:$6$c2FsdA==$aGFzaA==",
        "acme",
        "acme:$7$101$not*base64$AAAA",
        "acme:$7$many$c2FsdA==$aGFzaA==",
    ],
)
def test_check_password_rejects_other_format(line: str) -> None:
    with pytest.raises(ValueError, match="acme"):
        check_mosquitto_password(line, "secret")


@pytest.mark.parametrize("user", ["", "a:b", "a\nb"])
def test_password_line_rejects_bad_user(user: str) -> None:
    with pytest.raises(ValueError, match="invalid Mosquitto user name"):
        mosquitto_password_line(user, "secret")


# Password files


def test_set_password_creates_file(tmp_path: Path) -> None:
    path = tmp_path / "passwd"

    change = set_password(path, "acme", "secret")

    assert change == PasswordFileChange.CREATED
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert check_mosquitto_password(lines[0], "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().endswith(b"\n")


def test_set_password_replaces_line_keeps_others(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    other = b"other:$7$101$AAAA$BBBB\r\n"
    head = b"# members of pomorskie-metal\n\n" + other
    tail = b"  # indented comment acme:x\nlast:$7$101$CCCC$DDDD"
    path.write_bytes(head + b"acme:$7$101$OLD$OLD\r\n" + tail)

    change = set_password(path, "acme", "new-secret")

    assert change == PasswordFileChange.REPLACED
    content = path.read_bytes()
    assert content.startswith(head)
    assert content.endswith(b"\r\n" + tail)
    acme_line = content[len(head) : -len(tail)].decode()
    assert acme_line.endswith("\r\n")
    assert check_mosquitto_password(acme_line, "new-secret")


def test_set_password_appends_after_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(b"other:$7$101$AAAA$BBBB")

    change = set_password(path, "acme", "secret")

    assert change == PasswordFileChange.ADDED
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == b"other:$7$101$AAAA$BBBB"
    assert check_mosquitto_password(lines[1].decode(), "secret")
    assert lines[2] == b""


def test_set_password_removes_duplicate_lines(tmp_path: Path) -> None:
    # Mosquitto 2.0.11 takes the last line of a user, so an old duplicate must not survive.
    path = tmp_path / "passwd"
    path.write_text("acme:$7$101$ONE$ONE\nother:$7$101$A$B\nacme:$7$101$TWO$TWO\n")

    set_password(path, "acme", "secret")

    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert check_mosquitto_password(lines[0], "secret")
    assert lines[1] == "other:$7$101$A$B"


def test_set_password_matches_whole_user_name(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("acme-2:$7$101$A$B\nacm:$7$101$C$D\n")

    change = set_password(path, "acme", "secret")

    assert change == PasswordFileChange.ADDED
    assert path.read_text().startswith("acme-2:$7$101$A$B\nacm:$7$101$C$D\nacme:$7$101$")


def test_set_password_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("other:$7$101$A$B\n")
    path.chmod(0o640)

    set_password(path, "acme", "secret")

    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_set_password_follows_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-passwd"
    real.write_text("other:$7$101$A$B\n")
    link = tmp_path / "passwd"
    link.symlink_to(real)

    set_password(link, "acme", "secret")

    assert link.is_symlink()
    assert "acme:$7$101$" in real.read_text()


def test_set_password_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "passwd"

    set_password(path, "acme", "secret")
    set_password(path, "acme", "secret-2")

    assert sorted(child.name for child in tmp_path.iterdir()) == ["passwd"]


@pytest.mark.parametrize("member", ["bad member", "a/b", "+", "", "x" * 65])
def test_set_password_rejects_bad_member(tmp_path: Path, member: str) -> None:
    with pytest.raises(InvalidSettingError) as caught:
        set_password(tmp_path / "passwd", member, "secret")

    assert caught.value.message_id == "member_invalid"
    assert repr(member) in str(caught.value)
    assert not (tmp_path / "passwd").exists()


def test_set_password_rejects_aggregator_user(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettingError) as caught:
        set_password(tmp_path / "passwd", AGGREGATOR_USER, "secret")

    assert str(caught.value) == (
        "The member id 'aggregator' is reserved for the aggregator's broker account, which may "
        "read every member's messages. Pick another id."
    )


def test_set_password_missing_folder_fails(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "passwd"

    with pytest.raises(MosquittoPasswordFileError) as caught:
        set_password(path, "acme", "secret")

    assert str(caught.value).startswith(f"Cannot write the Mosquitto password file {path}: ")
    assert "Check that the file's folder exists" in str(caught.value)


def test_set_password_folder_as_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.mkdir()

    with pytest.raises(MosquittoPasswordFileError) as caught:
        set_password(path, "acme", "secret")

    assert str(caught.value).startswith(f"Cannot read the Mosquitto password file {path}: ")


# kooperant server add-member


def test_cli_add_member_writes_account(tmp_path: Path, database_url: str) -> None:
    passwords = tmp_path / "passwd"

    result = run_cli(
        "add-member",
        "--cluster",
        "c1",
        "--member",
        "acme",
        "--database",
        database_url,
        "--mosquitto-passwords",
        str(passwords),
        verbose=True,
    )

    assert result.returncode == 0, result.stderr
    password = password_from(result.stdout)
    assert len(password) == 32
    assert password not in result.stderr
    settings = yaml.safe_load(result.stdout)
    assert settings["cluster"] == "c1"
    assert settings["member"] == "acme"
    assert settings["broker"]["url"] == "mqtts://BROKER_HOST:8883"
    assert settings["broker"]["username"] == "acme"
    assert settings["broker"]["tls"] == {"ca_file": "ca.crt"}
    assert "Registered member acme (cluster c1)" in result.stderr
    assert f"Wrote the account of acme to the password file {passwords}" in result.stderr
    assert "systemctl reload mosquitto" in result.stderr
    assert f"chown mosquitto:mosquitto {passwords}" in result.stderr
    assert check_mosquitto_password(passwords.read_text(), password)
    storage = Storage(database_url)
    try:
        assert storage.is_registered("c1", "acme")
        assert not storage.is_registered("c1", "other")
    finally:
        storage.close()


def test_cli_add_member_polish_text(tmp_path: Path, sqlite_url: str) -> None:
    result = run_cli(
        "add-member", "--cluster", "c1", "--member", "acme", "--database", sqlite_url, language="pl"
    )

    assert result.returncode == 0, result.stderr
    assert "Zarejestrowano członka acme (klaster c1)" in result.stderr
    assert "ustaw to hasło użytkownikowi acme w brokerze samodzielnie" in result.stderr
    assert "Certyfikat CA brokera" in result.stdout
    assert password_from(result.stdout) not in result.stderr


def test_cli_add_member_twice_rejected(tmp_path: Path, sqlite_url: str) -> None:
    passwords = tmp_path / "passwd"
    arguments = ("add-member", "--cluster", "c1", "--member", "acme", "--database", sqlite_url)
    first = run_cli(*arguments, "--mosquitto-passwords", str(passwords))
    before = passwords.read_bytes()

    second = run_cli(*arguments, "--mosquitto-passwords", str(passwords))

    assert first.returncode == 0, first.stderr
    assert second.returncode == 2
    assert second.stdout == ""
    assert "Member acme (cluster c1) is already registered." in second.stderr
    assert "--new-password" in second.stderr
    assert passwords.read_bytes() == before


def test_cli_add_member_new_password(tmp_path: Path, sqlite_url: str) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text("other:$7$101$A$B\n")
    arguments = ("add-member", "--cluster", "c1", "--member", "acme", "--database", sqlite_url)
    first = run_cli(*arguments, "--mosquitto-passwords", str(passwords))

    second = run_cli(*arguments, "--mosquitto-passwords", str(passwords), "--new-password")

    assert second.returncode == 0, second.stderr
    old_password = password_from(first.stdout)
    new_password = password_from(second.stdout)
    assert new_password != old_password
    assert "was already registered" in second.stderr
    assert "only its password changes" in second.stderr
    lines = passwords.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0] == "other:$7$101$A$B"
    assert check_mosquitto_password(lines[1], new_password)
    assert not check_mosquitto_password(lines[1], old_password)
    assert "chown" not in second.stderr


def test_cli_add_member_new_password_unknown_member_rejected(
    tmp_path: Path, sqlite_url: str
) -> None:
    passwords = tmp_path / "passwd"
    arguments = ("add-member", "--cluster", "c1", "--database", sqlite_url)
    run_cli(*arguments, "--member", "acme", "--mosquitto-passwords", str(passwords))
    before = passwords.read_bytes()

    result = run_cli(
        *arguments, "--member", "acm", "--mosquitto-passwords", str(passwords), "--new-password"
    )

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Member acm (cluster c1) is not registered" in result.stderr
    assert "Check the spelling" in result.stderr
    assert "Traceback" not in result.stderr
    assert passwords.read_bytes() == before
    storage = Storage(sqlite_url)
    try:
        assert not storage.is_registered("c1", "acm")
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("cluster", "member", "expected"),
    [
        ("c1", "bad member", "Invalid member id 'bad member'"),
        ("c 1", "acme", "Invalid cluster id 'c 1'"),
        ("c1", "aggregator", "The member id 'aggregator' is reserved"),
    ],
)
def test_cli_add_member_bad_id_exits_2(
    tmp_path: Path, cluster: str, member: str, expected: str
) -> None:
    database = tmp_path / "k.db"

    result = run_cli(
        "add-member",
        "--cluster",
        cluster,
        "--member",
        member,
        "--database",
        f"sqlite:///{database}",
    )

    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert not database.exists()


def test_cli_add_member_unwritable_file_exits_2(tmp_path: Path, sqlite_url: str) -> None:
    passwords = tmp_path / "missing" / "passwd"

    result = run_cli(
        "add-member",
        "--cluster",
        "c1",
        "--member",
        "acme",
        "--database",
        sqlite_url,
        "--mosquitto-passwords",
        str(passwords),
    )

    assert result.returncode == 2
    assert f"Cannot write the Mosquitto password file {passwords}" in result.stderr
    assert result.stdout == ""
    storage = Storage(sqlite_url)
    try:
        assert not storage.is_registered("c1", "acme")
    finally:
        storage.close()


def test_cli_add_member_unreachable_database_exits_2(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"

    result = run_cli(
        "add-member",
        "--cluster",
        "c1",
        "--member",
        "acme",
        "--database",
        "postgresql://postgres:hidden@127.0.0.1:1/kooperant",
        "--mosquitto-passwords",
        str(passwords),
    )

    assert result.returncode == 2
    assert "Cannot connect to the database postgresql://postgres:***@127.0.0.1:1/kooperant" in (
        result.stderr
    )
    assert "hidden" not in result.stderr
    assert result.stdout == ""
    assert not passwords.exists()


@pytest.mark.parametrize("member", ["acme", "0123", "true"])
def test_cli_add_member_settings_load_in_agent(
    tmp_path: Path, sqlite_url: str, member: str
) -> None:
    result = run_cli("add-member", "--cluster", "c1", "--member", member, "--database", sqlite_url)
    assert result.returncode == 0, result.stderr
    (tmp_path / "ca.crt").write_text("")
    shutil.copy(REPO_ROOT / "config" / "policy.example.yaml", tmp_path / "policy.yaml")
    settings = result.stdout.replace("BROKER_HOST", "mqtt.example.org")
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(settings + "policy: policy.yaml\n", encoding="utf-8")

    config = load_config(config_file)

    assert config.cluster == "c1"
    assert config.member == member
    assert config.broker.url == "mqtts://mqtt.example.org:8883"
    assert config.broker.username == member
    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == password_from(result.stdout)
    assert config.broker.tls is not None
    assert config.broker.tls.ca_file.name == "ca.crt"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "will be rejected until you register them with kooperant server add-member: seen"),
        ("pl", "będą odrzucane, dopóki ich nie zarejestrujesz poleceniem kooperant server"),
    ],
)
def test_cli_first_registration_names_senders(tmp_path: Path, language: str, expected: str) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    storage = Storage(url)
    try:
        storage.migrate()
        storage.store_offer(machine_offer("c1", "seen", "cnc"), T0)
    finally:
        storage.close()

    options = ["--cluster", "c1", "--database", url]
    first = run_cli("add-member", *options, "--member", "acme", language=language)
    second = run_cli("add-member", *options, "--member", "beta", language=language)

    assert first.returncode == 0, first.stderr
    assert expected in " ".join(first.stderr.split())
    assert second.returncode == 0, second.stderr
    assert "seen" not in second.stderr
