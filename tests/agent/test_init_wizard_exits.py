"""``kooperant agent init`` in a pseudo-terminal: ending early, rejected answers, a taken folder."""

from __future__ import annotations

from pathlib import Path

import pexpect
import pytest

from tests.agent.test_init_wizard import WORDINGS, Wording, spawn_init

ENGLISH = WORDINGS[0]
OUTPUT_CHOICE = r"overwrite these files \(o\) or quit without writing \(q\)\? \[a\]: "
EXPORT_QUESTION = r"\((schedule|warehouse|stock|it_team|jpk_mag|edi_epp)\): "


def finish(child: pexpect.spawn) -> str:
    """Wait for the command to end and return the rest of its output."""
    child.expect(pexpect.EOF)
    rest: str = child.before
    child.close()
    return rest


def answer_until_opcua(child: pexpect.spawn, wording: Wording) -> None:
    for prompt, text in [
        (wording.member, "acme"),
        (wording.cluster, "c1"),
        (wording.broker_url, ""),
        (wording.username, ""),
    ]:
        child.expect(prompt)
        child.sendline(text)


def answer_until_output(child: pexpect.spawn) -> None:
    answer_until_opcua(child, ENGLISH)
    child.expect(ENGLISH.opcua_url)
    child.sendline("")
    for _ in range(6):
        child.expect(EXPORT_QUESTION)
        child.sendline("")
    child.expect(ENGLISH.host)
    child.sendline("n")


@pytest.mark.parametrize(
    ("language", "message"),
    [("en", "Interrupted (Ctrl+C); nothing was written."), ("pl", "Przerwano (Ctrl+C); nic nie")],
)
def test_wizard_ctrl_c_exits_130(tmp_path: Path, language: str, message: str) -> None:
    # KOOPERANT_LANG names the other language, so the message must follow --lang.
    other = "pl" if language == "en" else "en"
    child = spawn_init(other, tmp_path, "--lang", language)
    wording = WORDINGS[0] if language == "en" else WORDINGS[1]
    answer_until_opcua(child, wording)
    child.expect(wording.opcua_url)

    child.sendintr()
    child.expect_exact(message)
    rest = finish(child)

    assert child.exitstatus == 130, rest
    assert list(tmp_path.iterdir()) == []


def test_wizard_ctrl_c_in_english_not_polish(tmp_path: Path) -> None:
    child = spawn_init("pl", tmp_path, "--lang", "en")
    child.expect(ENGLISH.member)

    child.sendintr()
    rest = finish(child)

    assert child.exitstatus == 130, rest
    assert "Interrupted (Ctrl+C); nothing was written." in rest
    assert "Przerwano" not in rest


def test_wizard_ctrl_d_exits_2(tmp_path: Path) -> None:
    child = spawn_init("en", tmp_path)
    child.expect(ENGLISH.member)
    child.sendline("acme")
    child.expect(ENGLISH.cluster)

    child.sendeof()
    child.expect_exact("Input ended; nothing was written.")
    rest = finish(child)

    assert child.exitstatus == 2, rest
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("wording", WORDINGS, ids=lambda wording: wording.language)
def test_wizard_empty_member_says_required(tmp_path: Path, wording: Wording) -> None:
    reason = "an answer is required" if wording.language == "en" else "odpowiedź jest wymagana"
    child = spawn_init(wording.language, tmp_path)
    child.expect(wording.member)

    child.sendline("")
    child.expect_exact(reason)
    child.expect(wording.member)
    child.sendline("acme")
    child.expect(wording.cluster)
    child.sendline(" ")
    child.expect_exact(reason)
    child.expect(wording.cluster)
    child.sendintr()
    finish(child)

    assert child.exitstatus == 130


def test_wizard_control_characters_rejected(tmp_path: Path) -> None:
    child = spawn_init("en", tmp_path)
    child.expect(ENGLISH.member)
    child.sendline("acme")
    child.expect(ENGLISH.cluster)
    child.sendline("c1")
    child.expect(ENGLISH.broker_url)
    child.sendline("")

    child.expect(ENGLISH.username)
    child.sendline("a\x1b[31mb")
    child.expect_exact(r"'a\x1b[31mb' contains the control or format character U+001B")
    child.expect(ENGLISH.username)
    child.sendline("")
    child.expect(ENGLISH.opcua_url)
    child.sendline("opc.tcp://plc\x07:4840")
    child.expect_exact(r"'opc.tcp://plc\x07:4840' contains the control or format character")
    child.expect(ENGLISH.opcua_url)
    child.sendline("")
    child.expect(ENGLISH.export_schedule)
    child.sendline("plan\u202e.csv")
    child.expect_exact(r"'plan\u202e.csv' contains the control or format character U+202E")
    child.expect(ENGLISH.export_schedule)
    child.sendintr()
    finish(child)

    assert child.exitstatus == 130
    assert list(tmp_path.iterdir()) == []


def test_wizard_repeated_opcua_asked_again(tmp_path: Path, free_port: int) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port}"
    child = spawn_init("en", tmp_path)
    answer_until_opcua(child, ENGLISH)
    child.expect(ENGLISH.opcua_url)
    child.sendline(url)
    child.expect(ENGLISH.choice)
    child.sendline("k")

    child.expect(ENGLISH.opcua_url)
    child.sendline(f"{url}/")
    child.expect_exact(f"the server {url}/ is already added")
    child.expect(ENGLISH.opcua_url)
    child.sendintr()
    rest = finish(child)

    assert child.exitstatus == 130
    assert rest.count("Browsing") == 0


def test_wizard_taken_folder_warns_first(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    child = spawn_init("en", tmp_path)

    child.expect_exact(f"Note: the folder {tmp_path} already contains policy.yaml.")
    child.expect(ENGLISH.member)
    child.sendintr()
    finish(child)

    assert child.exitstatus == 130
    assert (tmp_path / "policy.yaml").read_text("utf-8") == "share: []\n"


def test_wizard_taken_folder_another_folder(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text("member: other\n", encoding="utf-8")
    child = spawn_init("en", tmp_path, "--skip-check")
    answer_until_output(child)
    child.expect(ENGLISH.output)
    child.sendline("")
    child.expect_exact(f"The folder {tmp_path} already contains agent.yaml.")
    child.expect(OUTPUT_CHOICE)
    child.sendline("x")
    child.expect_exact("'x' is not a choice: type one of a, o, q.")
    child.expect(OUTPUT_CHOICE)
    child.sendline("o")
    child.expect_exact(f"Overwrite the files in {tmp_path}? [y/N]: ")
    child.sendline("n")
    # A declined overwrite suggests a subfolder without the files.
    child.expect_exact(f"[{tmp_path / 'kooperant'}]: ")
    child.sendline("")
    child.expect(ENGLISH.audit_log)
    child.sendline("")
    rest = finish(child)

    assert child.exitstatus == 0, rest
    assert (tmp_path / "agent.yaml").read_text("utf-8") == "member: other\n"
    assert "member: acme" in (tmp_path / "kooperant" / "agent.yaml").read_text("utf-8")


def test_wizard_taken_folder_overwrite(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    child = spawn_init("en", tmp_path, "--skip-check")
    answer_until_output(child)
    child.expect(ENGLISH.output)
    child.sendline(str(tmp_path))
    child.expect(OUTPUT_CHOICE)
    child.sendline("o")
    child.expect_exact(f"Overwrite the files in {tmp_path}? [y/N]: ")
    child.sendline("y")
    child.expect(ENGLISH.audit_log)
    child.sendline("")
    rest = finish(child)

    assert child.exitstatus == 0, rest
    assert "SHARES NOTHING" in (tmp_path / "policy.yaml").read_text("utf-8")
    assert "member: acme" in (tmp_path / "agent.yaml").read_text("utf-8")


def test_wizard_taken_folder_quit(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text("member: other\n", encoding="utf-8")
    child = spawn_init("en", tmp_path)
    answer_until_output(child)
    child.expect(ENGLISH.output)
    child.sendline("")
    child.expect(OUTPUT_CHOICE)
    child.sendline("q")
    child.expect_exact("Quit; nothing was written.")
    rest = finish(child)

    assert child.exitstatus == 2, rest
    assert sorted(path.name for path in tmp_path.iterdir()) == ["agent.yaml"]
    assert (tmp_path / "agent.yaml").read_text("utf-8") == "member: other\n"
