"""The tokens file: loading with file:line errors, ``token add``, and reloading while running."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.errors import InvalidSettingError, TokensFileError
from server.storage import Viewer
from server.tokens import TokenStore, add_token, hash_token, load_tokens_file, parse_tokens

HASH_A = hash_token("token-a")
HASH_B = hash_token("token-b")


def write(tmp_path: Path, text: str, name: str = "tokens.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_reads_entries_as_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"# comment\n- cluster: c1\n  member: 0123\n  token_sha256: {HASH_A.upper()}\n"
        f'- {{cluster: "c1", member: "no", token_sha256: "{HASH_B}"}}\n',
    )

    entries = load_tokens_file(path)

    assert [(entry.cluster, entry.member, entry.line) for entry in entries] == [
        ("c1", "0123", 2),
        ("c1", "no", 5),
    ]
    assert entries[0].token_sha256 == HASH_A


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[]\n"])
def test_load_file_without_entries_rejected(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(TokensFileError) as caught:
        load_tokens_file(path)

    assert caught.value.problem_lines("en") == [
        f"{path}: the file has no tokens, so the server would reject every request. Add one "
        f"with kooperant server token add --tokens {path} --cluster CLUSTER --member MEMBER"
    ]
    assert caught.value.problem_lines("pl") == [
        f"{path}: plik nie zawiera żadnego tokenu, więc serwer odrzucałby każde zapytanie. "
        f"Dodaj token poleceniem kooperant server token add --tokens {path} "
        "--cluster KLASTER --member CZŁONEK"
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[]\n"])
def test_parse_file_without_entries_empty(tmp_path: Path, text: str) -> None:
    assert parse_tokens(text, tmp_path / "tokens.yaml") == ()


def test_add_token_to_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# only a comment\n")

    token = add_token(path, "c1", "acme")

    assert TokenStore.load(path).viewer_for(token) == Viewer("c1", "acme")
    assert path.read_text().startswith("# only a comment\n")


BAD_FILES = [
    (
        "cluster: c1\n",
        "1: the file must be a list of entries",
    ),
    ("- just-text\n", "1: [0]: an entry needs the keys cluster, member and token_sha256"),
    (
        f"- cluster: c1\n  member: acme\n  token_sha256: {HASH_A}\n  role: admin\n",
        "4: [0].role: unknown key; use only cluster, member and token_sha256",
    ),
    ("- cluster: c1\n  member: acme\n", "1: [0].token_sha256: missing required key; add it"),
    (
        f"- cluster: c1\n  member: acme\n  member: beta\n  token_sha256: {HASH_A}\n",
        "3: [0].member: duplicate key; keep only one of its entries",
    ),
    (
        f"- cluster: c1\n  member: bad member\n  token_sha256: {HASH_A}\n",
        "2: [0].member: invalid id 'bad member': use 1 to 64 letters",
    ),
    (
        f"- cluster: [c1]\n  member: acme\n  token_sha256: {HASH_A}\n",
        "1: [0].cluster: the value must be text, not a list or a mapping",
    ),
    (
        "- cluster: c1\n  member: acme\n  token_sha256: sekretny-token-czlonka\n",
        "3: [0].token_sha256: not a SHA-256 hash of 64 hexadecimal digits",
    ),
    (
        f"- cluster: c1\n  member: acme\n  token_sha256: {HASH_A}\n"
        f"- cluster: c1\n  member: beta\n  token_sha256: {HASH_A}\n",
        "4: [1].token_sha256: the same hash is already on line 1; remove one of the entries",
    ),
    ("- cluster: c1\n  member: [acme\n", "3: invalid YAML: "),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_load_bad_file_names_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(TokensFileError) as raised:
        load_tokens_file(path)

    message = str(raised.value)
    assert message.startswith(f"Invalid tokens file {path}.")
    assert f"{path}:{expected}" in message


def test_bad_hash_value_not_shown(tmp_path: Path) -> None:
    path = write(tmp_path, "- {cluster: c1, member: acme, token_sha256: sekretny-token}\n")

    with pytest.raises(TokensFileError) as raised:
        load_tokens_file(path)

    assert "sekretny-token" not in str(raised.value)
    assert "sekretny-token" not in raised.value.localized("pl")


def test_load_reports_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "- {cluster: c1, member: 'a b', token_sha256: x}\n- 7\n")

    with pytest.raises(TokensFileError) as raised:
        load_tokens_file(path)

    assert len(raised.value.problems) == 3


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"

    with pytest.raises(TokensFileError) as raised:
        load_tokens_file(path)

    assert f"{path}: file not found" in str(raised.value)
    assert "kooperant server token add" in str(raised.value)


def test_load_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_bytes(b"- cluster: \xff\n")

    with pytest.raises(TokensFileError, match=r"not UTF-8 text \(byte 11\)"):
        load_tokens_file(path)


def test_error_in_polish(tmp_path: Path) -> None:
    path = write(tmp_path, "- cluster: c1\n  member: acme\n")

    with pytest.raises(TokensFileError) as raised:
        load_tokens_file(path)

    polish = raised.value.localized("pl")
    assert polish.startswith(f"Nieprawidłowy plik tokenów {path}.")
    assert f"{path}:1: [0].token_sha256: brak wymaganego klucza" in polish


def test_add_token_creates_private_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"

    token = add_token(path, "c1", "acme")

    entries = load_tokens_file(path)
    assert [(entry.cluster, entry.member) for entry in entries] == [("c1", "acme")]
    assert entries[0].token_sha256 == hash_token(token)
    assert token not in path.read_text()
    assert len(token) >= 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_add_token_keeps_comments_and_mode(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"# operators: keep this\n- {{cluster: c1, member: a, token_sha256: {HASH_A}}}"
    )
    os.chmod(path, 0o640)

    first = add_token(path, "c1", "beta")
    second = add_token(path, "c1", "beta")

    text = path.read_text()
    assert text.startswith("# operators: keep this\n")
    assert [entry.member for entry in parse_tokens(text, path)] == ["a", "beta", "beta"]
    assert first != second
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_add_token_refuses_flow_list(tmp_path: Path) -> None:
    original = f"[{{cluster: c1, member: a, token_sha256: {HASH_A}}}]\n"
    path = write(tmp_path, original)

    with pytest.raises(TokensFileError, match="write the entries as a block list"):
        add_token(path, "c1", "beta")

    assert path.read_text() == original


def test_add_token_refuses_invalid_file(tmp_path: Path) -> None:
    path = write(tmp_path, "- cluster: c1\n")

    with pytest.raises(TokensFileError, match="missing required key"):
        add_token(path, "c1", "beta")

    assert path.read_text() == "- cluster: c1\n"


@pytest.mark.parametrize(
    ("cluster", "member", "named"), [("c 1", "a", "cluster"), ("c1", "", "member")]
)
def test_add_token_rejects_bad_id(tmp_path: Path, cluster: str, member: str, named: str) -> None:
    with pytest.raises(InvalidSettingError, match=f"Invalid {named} id"):
        add_token(tmp_path / "tokens.yaml", cluster, member)

    assert not (tmp_path / "tokens.yaml").exists()


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_store_matches_only_known_tokens(tmp_path: Path) -> None:
    path = write(tmp_path, f"- {{cluster: c1, member: acme, token_sha256: {HASH_A}}}\n")
    store = TokenStore.load(path)

    assert store.viewer_for("token-a") == Viewer("c1", "acme")
    assert store.viewer_for("token-b") is None
    assert store.viewer_for("") is None


def test_store_reloads_changed_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"- {{cluster: c1, member: acme, token_sha256: {HASH_A}}}\n")
    ticker = Ticker()
    store = TokenStore.load(path, monotonic=ticker)

    token = add_token(path, "c1", "beta")
    before_check = store.viewer_for(token)
    ticker.now += 1.0
    after_check = store.viewer_for(token)

    assert before_check is None
    assert after_check == Viewer("c1", "beta")


def test_store_keeps_tokens_on_bad_reload(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, f"- {{cluster: c1, member: acme, token_sha256: {HASH_A}}}\n")
    ticker = Ticker()
    store = TokenStore.load(path, monotonic=ticker)

    path.write_text(f"- {{cluster: c1, member: acme, token_sha256: {HASH_A}}}\n- oops\n")
    ticker.now += 1.0
    with caplog.at_level(logging.ERROR, logger="server.tokens"):
        viewer = store.viewer_for("token-a")

    assert viewer == Viewer("c1", "acme")
    assert f"Rejected the changed tokens file {path}" in caplog.text
    assert "the previous 1 API tokens stay in force" in caplog.text
    assert "run the command again" not in caplog.text
    assert f"{path}:2: [1]" in caplog.text
    assert "token-a" not in caplog.text


@pytest.mark.parametrize("text", ["", "# all tokens revoked\n"])
def test_store_keeps_tokens_when_emptied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    path = write(tmp_path, f"- {{cluster: c1, member: acme, token_sha256: {HASH_A}}}\n")
    ticker = Ticker()
    store = TokenStore.load(path, monotonic=ticker)

    path.write_text(text)
    ticker.now += 1.0
    with caplog.at_level(logging.ERROR, logger="server.tokens"):
        viewer = store.viewer_for("token-a")

    assert viewer == Viewer("c1", "acme")
    assert "the previous 1 API tokens stay in force" in caplog.text
    assert f"{path}: the file has no tokens" in caplog.text
    assert "run the command again" not in caplog.text


def run_cli(*arguments: str, language: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kooperant", "server", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "KOOPERANT_LANG": language},
        timeout=30,
        check=False,
    )


def test_cli_token_add_prints_token_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"

    result = run_cli(
        "token", "add", "--tokens", str(path), "--cluster", "c1", "--member", "acme", language="pl"
    )

    token = result.stdout.strip()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{token}\n"
    assert "Dopisano token członka acme (klaster c1)" in result.stderr
    assert token not in result.stderr
    assert TokenStore.load(path).viewer_for(token) == Viewer("c1", "acme")


def test_cli_token_add_bad_file_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "- cluster: c1\n  member: acme\n  token_sha256: abc\n")

    result = run_cli("token", "add", "--tokens", str(path), "--cluster", "c1", "--member", "b")

    assert result.returncode == 2
    assert f"{path}:3: [0].token_sha256: not a SHA-256 hash" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_cli_run_bad_tokens_file_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "- cluster: c1\n  member: bad member\n")

    result = run_cli(
        "run",
        "--tokens",
        str(path),
        "--database",
        f"sqlite:///{tmp_path / 'k.db'}",
        "--broker",
        "mqtt://127.0.0.1:9",
        language="pl",
    )

    assert result.returncode == 2
    assert f"Nieprawidłowy plik tokenów {path}." in result.stderr
    assert f"{path}:2: [0].member: nieprawidłowy identyfikator 'bad member'" in result.stderr
    assert f"{path}:1: [0].token_sha256: brak wymaganego klucza" in result.stderr
    assert not (tmp_path / "k.db").exists()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "the file has no tokens, so the server would reject every request"),
        ("pl", "plik nie zawiera żadnego tokenu"),
    ],
)
def test_cli_run_empty_tokens_file_exits_2(tmp_path: Path, language: str, expected: str) -> None:
    path = write(tmp_path, "")

    result = run_cli(
        "run",
        "--tokens",
        str(path),
        "--database",
        f"sqlite:///{tmp_path / 'k.db'}",
        "--broker",
        "mqtt://127.0.0.1:9",
        language=language,
    )

    assert result.returncode == 2
    assert f"{path}: {expected}" in result.stderr
    assert f"kooperant server token add --tokens {path}" in result.stderr
    assert not (tmp_path / "k.db").exists()
    assert "Traceback" not in result.stderr
