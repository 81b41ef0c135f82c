"""YAML syntax and file errors worded as problems in Polish and English, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.yamlfile import YamlDocument
from kooperant.i18n import Language

SOURCE = Path("sample.yaml")


def parse_error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        YamlDocument.parse(text, SOURCE, {})
    return str(caught.value)


# Each case: the file, the line, the English and the Polish reason.
CASES = [
    pytest.param(
        "broker:\n  url: x\n policy: y\n",
        3,
        "invalid YAML: while parsing a block mapping, expected <block end>, but found "
        "'<block mapping start>'",
        "nieprawidłowy YAML: wcięcie tego wiersza nie pasuje do wierszy powyżej; klucze "
        "i elementy listy tego samego poziomu wyrównaj tą samą liczbą spacji",
        id="indentation",
    ),
    pytest.param(
        "name: a: b\n",
        1,
        "invalid YAML: mapping values are not allowed here",
        "nieprawidłowy YAML: dwukropek w niedozwolonym miejscu; sprawdź wcięcie, a wartość "
        "zawierającą „: ” ujmij w cudzysłów",
        id="colon",
    ),
    pytest.param(
        "name: a\ncount\ndays: 2\n",
        3,
        "invalid YAML: while scanning a simple key, could not find expected ':'",
        "nieprawidłowy YAML: po kluczu z wiersza 2 brakuje dwukropka; zapisz wpis jako "
        "„klucz: wartość”",
        id="missing-colon",
    ),
    pytest.param(
        "broker:\n\turl: x\n",
        2,
        "invalid YAML: while scanning for the next token, found character '\\t' that cannot "
        "start any token",
        "nieprawidłowy YAML: znak tabulacji; do wcięć używaj spacji",
        id="tab",
    ),
    pytest.param(
        "name: @x\n",
        1,
        "invalid YAML: while scanning for the next token, found character '@' that cannot "
        "start any token",
        "nieprawidłowy YAML: wartość nie może zaczynać się znakiem '@'; ujmij ją w cudzysłów",
        id="reserved-character",
    ),
    pytest.param(
        "members: [a, b\nname: c\n",
        2,
        "invalid YAML: while parsing a flow sequence, expected ',' or ']', but got ':'",
        "nieprawidłowy YAML: w liście „[ ]” z wiersza 1 brakuje przecinka albo zamykającego „]”",
        id="unclosed-list",
    ),
    pytest.param(
        "groups: {a: 1\nname: c\n",
        2,
        "invalid YAML: while parsing a flow mapping, expected ',' or '}', but got ':'",
        "nieprawidłowy YAML: w słowniku „{ }” z wiersza 1 brakuje przecinka albo zamykającego „}”",
        id="unclosed-mapping",
    ),
    pytest.param(
        'name: "abc\ncount: 3\n',
        3,
        "invalid YAML: while scanning a quoted scalar, found unexpected end of stream",
        "nieprawidłowy YAML: cudzysłów otwarty w wierszu 1 nie jest zamknięty",
        id="unclosed-quote",
    ),
    pytest.param(
        'name: "\\q"\n',
        1,
        "invalid YAML: while scanning a double-quoted scalar, found unknown escape character 'q'",
        "nieprawidłowy YAML: nieznana sekwencja „\\q” w tekście w podwójnym cudzysłowie; użyj "
        "pojedynczego cudzysłowu albo zapisz ukośnik jako „\\\\”",
        id="unknown-escape",
    ),
    pytest.param(
        "name: *x\n",
        1,
        "invalid YAML: found undefined alias 'x'",
        "nieprawidłowy YAML: nieznany alias *x; najpierw zdefiniuj kotwicę &x",
        id="undefined-alias",
    ),
    pytest.param(
        "name: &x a\nlabel: &x b\n",
        2,
        "invalid YAML: found duplicate anchor 'x'; first occurrence, second occurrence",
        "nieprawidłowy YAML: kotwica &x jest już zdefiniowana w wierszu 1",
        id="duplicate-anchor",
    ),
    pytest.param(
        "name: a\n---\nname: b\n",
        2,
        "invalid YAML: expected a single document in the stream, but found another document",
        "nieprawidłowy YAML: plik zawiera więcej niż jeden dokument (separator „---”); zostaw "
        "jeden",
        id="many-documents",
    ),
    pytest.param(
        "name: a\n? [a, b]\n: c\n",
        2,
        "invalid YAML: while constructing a mapping, found unhashable key",
        "nieprawidłowy YAML: while constructing a mapping, found unhashable key",
        id="fallback-pyyaml-text",
    ),
    pytest.param(
        "name: a\nsince: 2027-02-30\n",
        2,
        "invalid YAML: invalid date '2027-02-30' (day is out of range for month)",
        "nieprawidłowa data '2027-02-30': taka data nie istnieje w kalendarzu; popraw dzień "
        "lub miesiąc (zapis RRRR-MM-DD)",
        id="impossible-date",
    ),
    pytest.param(
        "name: a\nname: b\n",
        2,
        "name: duplicate key; keep only one of its entries",
        "name: powtórzony klucz; zostaw tylko jeden z wpisów",
        id="duplicate-key",
    ),
    pytest.param(
        "name: a\nurl: mqtt://${BROKER_HOST}\n",
        2,
        "url: variable BROKER_HOST is not set; set it in the environment or give a default as "
        "${BROKER_HOST:-VALUE}",
        "url: zmienna BROKER_HOST nie jest ustawiona; ustaw ją w środowisku albo podaj wartość "
        "domyślną jako ${BROKER_HOST:-WARTOŚĆ}",
        id="variable-unset",
    ),
]


@pytest.mark.parametrize(("text", "line", "english", "polish"), CASES)
@pytest.mark.parametrize("language", ["en", "pl"])
def test_yaml_error_worded(
    monkeypatch: pytest.MonkeyPatch,
    language: Language,
    text: str,
    line: int,
    english: str,
    polish: str,
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    reason = english if language == "en" else polish

    assert parse_error(text) == f"sample.yaml:{line}: {reason}"


@pytest.mark.parametrize(
    ("language", "reason"),
    [("en", "file not found; check the path"), ("pl", "nie ma takiego pliku; sprawdź ścieżkę")],
)
def test_missing_file_worded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, language: Language, reason: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        YamlDocument.load(path, {})

    assert str(caught.value) == f"{path}: {reason}"


@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("en", "the file is not UTF-8 text (byte 6); save it as UTF-8"),
        ("pl", "plik nie jest tekstem UTF-8 (bajt 6); zapisz go w UTF-8"),
    ],
)
def test_non_utf8_file_worded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, language: Language, reason: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    path = tmp_path / "cp1250.yaml"
    path.write_bytes("name: Łódź\n".encode("cp1250"))

    with pytest.raises(ConfigError) as caught:
        YamlDocument.load(path, {})

    assert str(caught.value) == f"{path}: {reason}"


@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("en", "cannot read the file ({detail}); check the path and its permissions"),
        ("pl", "nie można odczytać pliku ({detail}); sprawdź ścieżkę i uprawnienia"),
    ],
)
def test_unreadable_file_worded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, language: Language, reason: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)

    with pytest.raises(ConfigError) as caught:
        YamlDocument.load(tmp_path, {})

    assert str(caught.value) == f"{tmp_path}: " + reason.format(detail="Is a directory")
