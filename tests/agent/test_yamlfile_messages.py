"""Pydantic errors worded as problems in Polish and English, with file, line and key path."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Literal

import pytest
from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from agent.config import load_config
from agent.errors import ConfigError
from agent.reasons import checked_identifier, count_text, plural_text
from agent.yamlfile import YamlDocument
from kooperant.i18n import Language, use_language
from kooperant.protocol import TopicError, check_identifier

SOURCE = Path("sample.yaml")


class Kind(Enum):
    MACHINE = "machine"
    STORAGE = "storage"


class Broker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


class Sample(BaseModel):
    """One key per pydantic error type that the agent's models and adapters raise."""

    model_config = ConfigDict(extra="forbid")

    name: str = "x"
    round: Literal["15min", "hour", "day"] = "hour"
    kind: Kind = Kind.MACHINE
    count: int = 1
    ratio: float = 1.0
    enabled: bool = True
    interval: float = Field(default=1.0, gt=0)
    days: int = Field(default=1, ge=1, le=366)
    share: float = Field(default=0.5, lt=1)
    members: tuple[str, ...] = Field(default=("a",), min_length=1, max_length=2)
    weekdays: tuple[Literal["mon", "tue"], ...] = Field(default=("mon",), min_length=1)
    groups: dict[str, int] = Field(default_factory=lambda: {"a": 1}, min_length=1)
    label: str = Field(default="a", min_length=1, max_length=5)
    code: str = Field(default="a", pattern=r"^[a-z]+$")
    link: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1")
    since: date = date(2027, 1, 1)
    at: datetime = datetime(2027, 1, 1)
    aware: AwareDatetime | None = None
    opens: time = time(6)
    folder: Path = Path(".")
    password: str = "x"
    amount: Decimal = Decimal(1)
    broker: Broker | None = None
    shift: str = "day"

    @field_validator("shift")
    @classmethod
    def _check_shift(cls, value: str) -> str:
        if value == "night":
            raise ValueError("night shifts are not shared")
        return value


def problems(text: str) -> list[str]:
    document = YamlDocument.parse(text, SOURCE)
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(document.data)
    return [problem.format(SOURCE) for problem in document.validation_problems(caught.value)]


# Each case: the file after a comment line, the line and key path, the English and Polish reason.
CASES = [
    pytest.param(
        "colour: red\n",
        "2: colour",
        "unknown key; remove it or correct its spelling",
        "nieznany klucz; usuń go albo popraw pisownię",
        id="extra_forbidden",
    ),
    pytest.param(
        "name: a\nbroker:\n  url: mqtt://127.0.0.1\n  port: 1883\n",
        "5: broker.port",
        "unknown key; remove it or correct its spelling",
        "nieznany klucz; usuń go albo popraw pisownię",
        id="extra_forbidden-nested",
    ),
    pytest.param(
        "name: a\nbroker: {}\n",
        "3: broker.url",
        "missing required key; add it",
        "brak wymaganego klucza; dodaj go",
        id="missing",
    ),
    pytest.param(
        "round: week\n",
        "2: round",
        "input should be '15min', 'hour' or 'day', got 'week'",
        "dozwolone wartości: '15min', 'hour', 'day' (podano 'week')",
        id="literal_error",
    ),
    pytest.param(
        "kind: robot\n",
        "2: kind",
        "input should be 'machine' or 'storage', got 'robot'",
        "dozwolone wartości: 'machine', 'storage' (podano 'robot')",
        id="enum",
    ),
    pytest.param(
        "name: [a]\n",
        "2: name",
        "input should be a valid string, got a list",
        "oczekiwano tekstu (podano listę)",
        id="string_type-list",
    ),
    pytest.param(
        "name: 2027-01-31\n",
        "2: name",
        "input should be a valid string, got 2027-01-31",
        "oczekiwano tekstu (podano 2027-01-31)",
        id="string_type-date",
    ),
    pytest.param(
        "count: many\n",
        "2: count",
        "input should be a valid integer, got 'many'",
        "oczekiwano liczby całkowitej (podano 'many')",
        id="int_parsing",
    ),
    pytest.param(
        "count: 7.5\n",
        "2: count",
        "input should be a valid integer, got 7.5",
        "oczekiwano liczby całkowitej (podano 7.5)",
        id="int_from_float",
    ),
    pytest.param(
        "count:\n",
        "2: count",
        "input should be a valid integer, got an empty value",
        "oczekiwano liczby całkowitej (podano pustą wartość)",
        id="int_type-empty",
    ),
    pytest.param(
        "ratio: many\n",
        "2: ratio",
        "input should be a valid number, got 'many'",
        "oczekiwano liczby (podano 'many')",
        id="float_parsing",
    ),
    pytest.param(
        "ratio: {a: 1}\n",
        "2: ratio",
        "input should be a valid number, got a mapping",
        "oczekiwano liczby (podano słownik)",
        id="float_type-mapping",
    ),
    pytest.param(
        "enabled: maybe\n",
        "2: enabled",
        "input should be true or false, got 'maybe'",
        "oczekiwano true albo false (podano 'maybe')",
        id="bool_parsing",
    ),
    pytest.param(
        "interval: 0\n",
        "2: interval",
        "input should be greater than 0, got 0",
        "wartość musi być większa niż 0 (podano 0)",
        id="greater_than",
    ),
    pytest.param(
        "days: 0\n",
        "2: days",
        "input should be greater than or equal to 1, got 0",
        "wartość musi wynosić co najmniej 1 (podano 0)",
        id="greater_than_equal",
    ),
    pytest.param(
        "share: 1.5\n",
        "2: share",
        "input should be less than 1, got 1.5",
        "wartość musi być mniejsza niż 1 (podano 1.5)",
        id="less_than",
    ),
    pytest.param(
        "days: 367\n",
        "2: days",
        "input should be less than or equal to 366, got 367",
        "wartość może wynosić najwyżej 366 (podano 367)",
        id="less_than_equal",
    ),
    pytest.param(
        "members: []\n",
        "2: members",
        "list must have at least 1 item, but has 0",
        "lista musi mieć co najmniej 1 element, a ma 0",
        id="too_short-list",
    ),
    pytest.param(
        "groups: {}\n",
        "2: groups",
        "mapping must have at least 1 key, but has 0",
        "słownik musi mieć co najmniej 1 klucz, a ma 0",
        id="too_short-mapping",
    ),
    pytest.param(
        "members: [a, b, c]\n",
        "2: members",
        "list must have at most 2 items, but has 3",
        "lista może mieć najwyżej 2 elementy, a ma 3",
        id="too_long",
    ),
    pytest.param(
        "weekdays: [pon]\n",
        "2: weekdays[0]",
        "input should be 'mon' or 'tue', got 'pon'",
        "dozwolone wartości: 'mon', 'tue' (podano 'pon')",
        id="too_short-only-from-invalid-item",
    ),
    pytest.param(
        "label: ''\n",
        "2: label",
        "string should have at least 1 character, got ''",
        "tekst musi mieć co najmniej 1 znak (podano '')",
        id="string_too_short",
    ),
    pytest.param(
        "label: abcdefgh\n",
        "2: label",
        "string should have at most 5 characters, got 8 characters",
        "tekst może mieć najwyżej 5 znaków (podano 8 znaków)",
        id="string_too_long",
    ),
    pytest.param(
        "code: A1\n",
        "2: code",
        "string should match pattern '^[a-z]+$', got 'A1'",
        "tekst nie pasuje do wzorca '^[a-z]+$' (podano 'A1')",
        id="string_pattern_mismatch",
    ),
    pytest.param(
        "link: not a url\n",
        "2: link",
        "input should be a valid URL (relative URL without a base), got 'not a url'",
        "oczekiwano poprawnego adresu URL (podano 'not a url')",
        id="url_parsing",
    ),
    pytest.param(
        "link: ftp://127.0.0.1\n",
        "2: link",
        "URL scheme should be 'http' or 'https', got 'ftp://127.0.0.1'",
        "dozwolone schematy adresu URL: 'http', 'https' (podano 'ftp://127.0.0.1')",
        id="url_scheme",
    ),
    pytest.param(
        "since: '2027-02-30'\n",
        "2: since",
        "input should be a valid date such as 2027-01-31 (day value is outside expected range), "
        "got '2027-02-30'",
        "oczekiwano istniejącej daty w zapisie RRRR-MM-DD, np. 2027-01-31 (podano '2027-02-30')",
        id="date_from_datetime_parsing",
    ),
    pytest.param(
        "at: yesterday\n",
        "2: at",
        "input should be a valid date and time such as 2027-01-31T18:00:00+01:00 (input is too "
        "short), got 'yesterday'",
        "oczekiwano daty z godziną, np. 2027-01-31T18:00:00+01:00 (podano 'yesterday')",
        id="datetime_from_date_parsing",
    ),
    pytest.param(
        "aware: 2027-01-31T18:00:00\n",
        "2: aware",
        "input should have a UTC offset, e.g. 2027-01-31T18:00:00+01:00, got 2027-01-31T18:00:00",
        "brak przesunięcia względem UTC, np. 2027-01-31T18:00:00+01:00 "
        "(podano 2027-01-31T18:00:00)",
        id="timezone_aware",
    ),
    pytest.param(
        "opens: '25:00'\n",
        "2: opens",
        "input should be a valid time such as 14:30 (hour value is outside expected range of "
        "0-23), got '25:00'",
        "oczekiwano godziny w zapisie GG:MM, np. 14:30 (podano '25:00')",
        id="time_parsing",
    ),
    pytest.param(
        "folder: 5\n",
        "2: folder",
        "input should be a file path, got 5",
        "oczekiwano ścieżki pliku (podano 5)",
        id="path_type",
    ),
    pytest.param(
        "name: a\nbroker: 5\n",
        "3: broker",
        "input should be a mapping of keys to values, got 5",
        "oczekiwano słownika, czyli wierszy „klucz: wartość” (podano 5)",
        id="model_type",
    ),
    pytest.param(
        "groups: true\n",
        "2: groups",
        "input should be a mapping of keys to values, got true",
        "oczekiwano słownika, czyli wierszy „klucz: wartość” (podano true)",
        id="dict_type",
    ),
    pytest.param(
        "members: 5\n",
        "2: members",
        "input should be a list, got 5",
        "oczekiwano listy (podano 5)",
        id="tuple_type",
    ),
    pytest.param(
        "password: [hunter2]\n",
        "2: password",
        "input should be a valid string",
        "oczekiwano tekstu",
        id="secret-value-hidden",
    ),
    pytest.param(
        "shift: night\n",
        "2: shift",
        "night shifts are not shared",
        "night shifts are not shared",
        id="value_error-own-message",
    ),
    pytest.param(
        "amount: lots\n",
        "2: amount",
        "input should be a valid decimal, got 'lots'",
        "input should be a valid decimal (podano 'lots')",
        id="fallback-pydantic-text",
    ),
]


@pytest.mark.parametrize(("text", "where", "english", "polish"), CASES)
@pytest.mark.parametrize("language", ["en", "pl"])
def test_pydantic_error_worded(
    monkeypatch: pytest.MonkeyPatch,
    language: Language,
    text: str,
    where: str,
    english: str,
    polish: str,
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    reason = english if language == "en" else polish

    assert problems("# sample\n" + text) == [f"sample.yaml:{where}: {reason}"]


def test_language_read_when_problem_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    polish = problems("colour: red\n")

    monkeypatch.setenv("KOOPERANT_LANG", "en")
    english = problems("colour: red\n")

    assert polish == ["sample.yaml:1: colour: nieznany klucz; usuń go albo popraw pisownię"]
    assert english == ["sample.yaml:1: colour: unknown key; remove it or correct its spelling"]


@pytest.mark.parametrize(
    ("count", "polish", "english"),
    [
        (0, "0 elementów", "0 items"),
        (1, "1 element", "1 item"),
        (2, "2 elementy", "2 items"),
        (4, "4 elementy", "4 items"),
        (5, "5 elementów", "5 items"),
        (12, "12 elementów", "12 items"),
        (14, "14 elementów", "14 items"),
        (22, "22 elementy", "22 items"),
        (101, "101 elementów", "101 items"),
    ],
)
def test_count_text_plural_forms(count: int, polish: str, english: str) -> None:
    assert count_text(count, "noun.item", "pl") == polish
    assert count_text(count, "noun.item", "en") == english


@pytest.mark.parametrize(
    ("count", "polish", "english"),
    [
        (1, "1 dnia", "1 day"),
        (2, "2 dni", "2 days"),
        (5, "5 dni", "5 days"),
        (22, "22 dni", "22 days"),
    ],
)
def test_plural_text_given_forms(count: int, polish: str, english: str) -> None:
    assert plural_text(count, "dnia|dni|dni", "pl") == polish
    assert plural_text(count, "day|days", "en") == english


@pytest.mark.parametrize("what", ["adapter", "cluster", "group", "member", "resource"])
def test_checked_identifier_english_matches_protocol(what: str) -> None:
    with pytest.raises(TopicError) as protocol:
        check_identifier("a/b", what)

    with use_language("en"), pytest.raises(ValueError) as worded:
        checked_identifier("a/b", what)

    assert str(worded.value) == str(protocol.value)
    assert worded.value.__cause__ is not None


def test_checked_identifier_valid_returned() -> None:
    assert checked_identifier("cnc-1", "resource") == "cnc-1"


ID_RULE = "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
PL_ID_RULE = "użyj od 1 do 64 liter, cyfr, '.', '_' lub '-', zaczynając od litery lub cyfry"
CONFIG = """\
member: {member}
cluster: pomorskie-metal
broker:
  url: mqtt://127.0.0.1:1883
policy: policy.yaml
"""
ADAPTER = "adapters:\n  - type: host\n    name: 'hala a'\n"


@pytest.mark.parametrize(
    ("text", "english", "polish"),
    [
        pytest.param(
            CONFIG.format(member="'acme/metal'"),
            f"1: member: invalid member id 'acme/metal': {ID_RULE}",
            f"1: member: nieprawidłowy identyfikator członka 'acme/metal': {PL_ID_RULE}",
            id="member",
        ),
        pytest.param(
            CONFIG.format(member="acme-metal") + ADAPTER,
            f"8: adapters[0].name: invalid adapter id 'hala a': {ID_RULE}",
            f"8: adapters[0].name: nieprawidłowy identyfikator adaptera 'hala a': {PL_ID_RULE}",
            id="adapter",
        ),
    ],
)
@pytest.mark.parametrize("language", ["en", "pl"])
def test_config_id_worded_per_language(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    language: Language,
    text: str,
    english: str,
    polish: str,
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    expected = english if language == "en" else polish

    with pytest.raises(ConfigError) as caught:
        load_config(path, {})

    assert str(caught.value) == f"{path}:{expected}"
