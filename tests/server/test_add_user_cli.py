"""``kooperant server add-user`` and the profile options of ``add-member``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from kooperant.i18n import Language, use_language
from server.cli import app as server_app
from server.passwords import verify_password
from server.storage import Storage
from tests.server.test_server_cli import run_cli


def invoke(*arguments: str, language: Language = "en") -> Result:
    with use_language(language):
        return CliRunner().invoke(server_app, list(arguments))


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    storage = Storage(url)
    storage.migrate()
    storage.register_member("c1", "beta", datetime(2026, 12, 1, tzinfo=UTC))
    storage.register_member("c2", "other", datetime(2026, 12, 1, tzinfo=UTC))
    storage.close()
    return url


def stored_user(database: str, username: str) -> tuple[str, bool, str | None, str]:
    storage = Storage(database)
    try:
        user = storage.find_user(username)
    finally:
        storage.close()
    assert user is not None
    return user.role, user.must_change_password, user.member, user.password_hash


def test_add_user_generates_password(database: str) -> None:
    result = invoke(
        "add-user", "--username", "Anna", "--role", "coordinator", "--cluster", "c1",
        "--database", database,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    password = result.stdout.strip().splitlines()[-1]
    role, must_change, member, password_hash = stored_user(database, "anna")
    assert (role, must_change, member) == ("coordinator", True, None)
    assert verify_password(password_hash, password).valid
    assert "Added account anna (role coordinator, cluster c1)" in result.stderr
    assert "shown only once" in result.stderr


def test_add_user_password_file(database: str, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("the chosen password 7\n")

    result = invoke(
        "add-user", "--username", "beta", "--role", "member", "--cluster", "c1",
        "--member", "beta", "--password-file", str(password_file), "--database", database,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "the chosen password 7" not in result.output
    role, must_change, member, password_hash = stored_user(database, "beta")
    assert (role, must_change, member) == ("member", False, "beta")
    assert verify_password(password_hash, "the chosen password 7").valid


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--role", "admin", "--cluster", "c1"), "Unknown role 'admin'"),
        (("--role", "member", "--cluster", "c1"), "needs a member: pass --member"),
        (("--role", "member", "--cluster", "c1", "--member", "other"), "belongs to a cluster"),
        (("--role", "member", "--cluster", "c1", "--member", "ghost"), "is not known"),
        (("--role", "member", "--cluster", "c 1", "--member", "beta"), "Invalid cluster id"),
        (("--role", "member", "--cluster", "c1", "--member", "b/x"), "Invalid member id"),
    ],
)
def test_add_user_bad_input(database: str, arguments: tuple[str, ...], expected: str) -> None:
    result = invoke("add-user", "--username", "someone", *arguments, "--database", database)

    assert result.exit_code != 0
    assert expected in result.output


def test_add_user_bad_username(database: str) -> None:
    result = invoke(
        "add-user", "--username", "Anna Kowalska", "--role", "coordinator", "--cluster", "c1",
        "--database", database,
    )  # fmt: skip

    assert result.exit_code == 2
    assert "Invalid user name 'Anna Kowalska'" in result.output


def test_add_user_duplicate(database: str) -> None:
    arguments = ("add-user", "--role", "coordinator", "--cluster", "c1", "--database", database)
    first = invoke(*arguments, "--username", "anna")
    second = invoke(*arguments, "--username", "ANNA")

    assert first.exit_code == 0
    assert second.exit_code == 2
    assert "The user name anna is already taken" in second.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("tiny pw 1\n", "too short"),
        ("anna\n", "too short"),
        ("anna.kowalska\n", "same as the user"),
        ("aaaabbbbcccc\n", "too few different characters"),
        ("my anna.KOWALSKA pw\n", "must not contain the user name"),
    ],
)
def test_add_user_weak_password(database: str, tmp_path: Path, content: str, expected: str) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(content)

    result = invoke(
        "add-user", "--username", "anna.kowalska", "--role", "coordinator", "--cluster", "c1",
        "--password-file", str(password_file), "--database", database,
    )  # fmt: skip

    assert result.exit_code == 2
    assert expected in result.output
    assert content.strip() not in result.output.replace("anna.kowalska", "")


def test_add_user_whitespace_password(database: str, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(" " * 12 + "\n")

    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1",
        "--password-file", str(password_file), "--database", database,
    )  # fmt: skip

    assert result.exit_code == 2
    assert "must not consist only of spaces" in result.output


def test_add_user_missing_password_file(database: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"

    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1",
        "--password-file", str(missing), "--database", database,
    )  # fmt: skip

    assert result.exit_code == 2
    assert (
        f"The password file {missing} given with --password-file does not exist." in result.output
    )
    assert "Errno" not in result.output


def test_add_user_password_file_problems_polish(database: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    latin2 = tmp_path / "latin2"
    latin2.write_bytes("hasło zażółć gęślą".encode("iso-8859-2"))
    arguments = ("add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1")

    missing_result = invoke(
        *arguments, "--password-file", str(missing), "--database", database, language="pl"
    )
    latin2_result = invoke(
        *arguments, "--password-file", str(latin2), "--database", database, language="pl"
    )

    assert missing_result.exit_code == 2
    assert f"Plik hasła {missing} podany w --password-file nie istnieje." in (missing_result.output)
    assert latin2_result.exit_code == 2
    assert f"Plik hasła {latin2} podany w --password-file nie jest tekstem UTF-8." in (
        latin2_result.output
    )


@pytest.mark.parametrize("language", ["en", "pl"])
@pytest.mark.parametrize("character", ["\x00", "\t", "\x1b", "\x7f"])
def test_add_user_password_control_character(
    database: str, tmp_path: Path, character: str, language: Language
) -> None:
    password = f"the chosen{character}password 7"
    password_file = tmp_path / "password"
    password_file.write_text(password + "\n")
    expected = {
        "en": "The password contains a control character",
        "pl": "Hasło zawiera znak sterujący",
    }[language]

    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1",
        "--password-file", str(password_file), "--database", database, language=language,
    )  # fmt: skip

    assert result.exit_code == 2
    assert expected in result.output
    assert password not in result.output
    storage = Storage(database)
    try:
        assert storage.find_user("anna") is None
    finally:
        storage.close()


def test_add_user_database_unreachable() -> None:
    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1",
        "--database", "postgresql://postgres@127.0.0.1:1/kooperant",
    )  # fmt: skip

    assert result.exit_code == 2
    assert "127.0.0.1:1" in result.output


def test_add_user_polish_messages(database: str) -> None:
    result = invoke(
        "add-user", "--username", "x", "--role", "szef", "--cluster", "c1",
        "--database", database, language="pl",
    )  # fmt: skip

    assert "Nieznana rola 'szef': podaj member albo coordinator." in result.output


def test_add_member_profile_options(database: str) -> None:
    result = invoke(
        "add-member", "--cluster", "c1", "--member", "gamma", "--name", "Gamma S.A.",
        "--email", "biuro@gamma.pl", "--phone", "+48 58 123 45 67", "--voivodeship",
        "Pomorskie", "--city", "Gdańsk", "--database", database,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    storage = Storage(database)
    try:
        profile = storage.read_profile("c1", "gamma")
    finally:
        storage.close()
    assert profile is not None
    assert (profile.name, profile.contact_email, profile.voivodeship, profile.city) == (
        "Gamma S.A.",
        "biuro@gamma.pl",
        "pomorskie",
        "Gdańsk",
    )


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--email", "nope", "Invalid e-mail address 'nope'"),
        ("--phone", "call me", "Invalid phone number 'call me'"),
        ("--voivodeship", "bavaria", "Unknown voivodeship 'bavaria'"),
    ],
)
def test_add_member_bad_profile(database: str, option: str, value: str, expected: str) -> None:
    result = invoke(
        "add-member", "--cluster", "c1", "--member", "gamma", option, value,
        "--database", database,
    )  # fmt: skip

    assert result.exit_code == 2
    assert expected in result.output
    storage = Storage(database)
    try:
        assert not storage.is_registered("c1", "gamma")
    finally:
        storage.close()


def test_add_member_reports_every_bad_option(database: str) -> None:
    result = invoke(
        "add-member", "--cluster", "c1", "--member", "bad id!", "--name", " ",
        "--email", "nope", "--city", "Gdy\x01nia", "--database", database,
    )  # fmt: skip

    assert result.exit_code == 2
    assert "Invalid member id" in result.output
    assert "The field “Company name” is required" in result.output
    assert "Invalid e-mail address 'nope'" in result.output
    assert "The field “City” contains a control character" in result.output


def test_add_member_nul_in_name_postgres(postgres_url: str) -> None:
    storage = Storage(postgres_url)
    storage.migrate()
    storage.close()

    result = invoke(
        "add-member", "--cluster", "c1", "--member", "gamma", "--name", "Gam\x00ma",
        "--database", postgres_url, language="pl",
    )  # fmt: skip

    assert result.exit_code == 2
    assert "Pole „Nazwa firmy” zawiera znak sterujący" in result.output
    storage = Storage(postgres_url)
    try:
        assert storage.read_profile("c1", "gamma") is None
    finally:
        storage.close()


def test_enable_user_after_disable(database: str) -> None:
    arguments = ("add-user", "--role", "coordinator", "--cluster", "c1", "--database", database)
    assert invoke(*arguments, "--username", "anna").exit_code == 0
    storage = Storage(database)
    try:
        user = storage.find_user("anna")
        assert user is not None
        storage.disable_user(user.id)
    finally:
        storage.close()

    taken = invoke(*arguments, "--username", "anna")
    enabled = invoke("enable-user", "--username", "Anna", "--database", database)
    unknown = invoke("enable-user", "--username", "nobody", "--database", database)

    assert taken.exit_code == 2
    assert "exists but is disabled" in taken.output
    assert "kooperant server enable-user --username anna" in taken.output
    assert enabled.exit_code == 0, enabled.output
    assert "Enabled the account anna" in enabled.output
    assert unknown.exit_code == 2
    assert "The account nobody was not found." in unknown.output
    storage = Storage(database)
    try:
        user = storage.find_user("anna")
    finally:
        storage.close()
    assert user is not None
    assert not user.disabled


def test_disable_user_ends_sessions(database: str) -> None:
    arguments = ("add-user", "--role", "coordinator", "--cluster", "c1", "--database", database)
    assert invoke(*arguments, "--username", "anna").exit_code == 0
    storage = Storage(database)
    try:
        user = storage.find_user("anna")
        assert user is not None
        session = storage.create_session(user.id, datetime.now(UTC))
    finally:
        storage.close()

    disabled = invoke("disable-user", "--username", "Anna", "--database", database)
    unknown = invoke("disable-user", "--username", "nobody", "--database", database, language="pl")

    assert disabled.exit_code == 0, disabled.output
    assert "Disabled the account anna" in disabled.output
    assert "ended its sessions" in disabled.output
    assert unknown.exit_code == 2
    assert "nobody" in unknown.output
    storage = Storage(database)
    try:
        user = storage.find_user("anna")
        ended = storage.find_session(session.session_id, datetime.now(UTC))
    finally:
        storage.close()
    assert user is not None
    assert user.disabled
    assert ended is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Disable a dashboard account and end all of its sessions."),
        ("pl", "Wyłącza konto panelu i kończy wszystkie jego sesje."),
    ],
)
def test_disable_user_help(language: Language, expected: str) -> None:
    # The help text is read when the command module is imported, so it needs a new process.
    completed = run_cli("disable-user", "--help", language=language)

    assert completed.returncode == 0, completed.stderr
    assert expected in " ".join(completed.stdout.split())


def test_add_user_unknown_cluster_rejected(database: str) -> None:
    arguments = ("add-user", "--username", "anna", "--role", "coordinator", "--database", database)

    typo = invoke(*arguments, "--cluster", "c3")
    created = invoke(*arguments, "--cluster", "c3", "--new-cluster")
    second = invoke(
        "add-user", "--username", "piotr", "--role", "coordinator", "--cluster", "c3",
        "--database", database,
    )  # fmt: skip

    assert typo.exit_code == 2
    assert "does not know the cluster “c3”" in typo.output
    assert "Known clusters: c1, c2." in typo.output
    assert created.exit_code == 0, created.output
    assert second.exit_code == 0, second.output


def test_add_user_first_cluster_accepted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c9",
        "--database", url,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert stored_user(url, "anna")[0] == "coordinator"


def test_database_url_unparsable_polish() -> None:
    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1",
        "--database", "not a url", language="pl",
    )  # fmt: skip

    assert result.exit_code == 2
    assert "Nie można odczytać adresu bazy danych: brakuje w nim „://”." in result.output
    assert "unparsable" not in result.output


def test_database_file_not_sqlite(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("plain text, not a database\n" * 200)

    result = invoke(
        "add-user", "--username", "anna", "--role", "coordinator", "--cluster", "c1",
        "--database", f"sqlite:///{not_sqlite}", language="pl",
    )  # fmt: skip

    assert result.exit_code != 0
    assert f"Plik {not_sqlite} istnieje, ale nie jest bazą SQLite." in result.output
    assert "file is not a database" not in result.output
    assert not_sqlite.read_text().startswith("plain text")
