"""Reading the policy file: every invalid value is reported with file, line and key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.policy import Rounding, load_policy, parse_policy
from kooperant.protocol import ResourceKind

PATH = Path("policy.yaml")
ID_RULE = "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
EXPIRES_HINT = (
    "expected a date or a date-time with a UTC offset, e.g. 2027-01-31 or 2027-01-31T18:00:00+01:00"
)
NOT_FINITE_HINT = (
    "is not a finite number; write finite edges >= 0, and end the list with the lower edge of "
    "the open last band, e.g. 80 in [0, 8, 20, 40, 80]"
)

FULL = """\
groups:
  partnerzy: [formy-sa, metal-works]
share:
  - resource: cnc-1
    kind: machine
    tag: [hala-a, hala-b]
    publish_as: frezarka
    name: Frezarka
    fields: [all, price]
    round: 15min
    bands:
      free_hours: [0, 8, 20.5]
      pallet_places: [10]
    horizon_days: 7
    delay_minutes: 30
    labels: {"/": system}
    audience: {members: [zeta], groups: [partnerzy]}
    expires: 2027-01-31
    requests: false
"""


def test_full_rule_read() -> None:
    policy = parse_policy(FULL, PATH)

    [rule] = policy.rules
    assert rule.number == 1
    assert rule.line == 4
    assert rule.resources == {"cnc-1"}
    assert rule.kinds == {ResourceKind.MACHINE}
    assert rule.tags == {"hala-a", "hala-b"}
    assert rule.publish_as == "frezarka"
    assert rule.name == "Frezarka"
    assert "price" in rule.fields
    assert "suppliers" not in rule.fields
    assert rule.round is Rounding.QUARTER_HOUR
    assert rule.bands == {"free_hours": (0.0, 8.0, 20.5), "pallet_places": (10.0,)}
    assert rule.horizon_days == 7
    assert rule.delay_minutes == 30
    assert rule.labels == {"/": "system"}
    assert rule.audience == ("formy-sa", "metal-works", "zeta")
    assert rule.expires == date(2027, 1, 31)
    assert rule.line_of("expires") == 18
    assert rule.accepts_requests is False
    assert rule.line_of("requests") == 19
    assert policy.groups == {"partnerzy": frozenset({"formy-sa", "metal-works"})}
    assert policy.source == PATH


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2027-01-31", date(2027, 1, 31)),
        ("'2027-01-31'", date(2027, 1, 31)),
        ("2027-01-31T18:00:00+01:00", datetime(2027, 1, 31, 17, tzinfo=UTC)),
        ("'2027-01-31T18:00:00+01:00'", datetime(2027, 1, 31, 17, tzinfo=UTC)),
        ("2027-01-31 18:00:00Z", datetime(2027, 1, 31, 18, tzinfo=UTC)),
    ],
)
def test_expires_forms_accepted(written: str, expected: date) -> None:
    text = f"share:\n  - resource: a\n    fields: []\n    expires: {written}\n"

    [rule] = parse_policy(text, PATH).rules

    assert rule.expires == expected
    assert type(rule.expires) is type(expected)


def test_expires_keeps_offset() -> None:
    text = "share:\n  - resource: a\n    fields: []\n    expires: 2027-01-31T18:00:00+01:00\n"

    [rule] = parse_policy(text, PATH).rules

    assert isinstance(rule.expires, datetime)
    assert rule.expires.utcoffset() == timezone(timedelta(hours=1)).utcoffset(None)


@pytest.mark.parametrize(
    ("written", "expected"),
    [(None, True), ("requests: true", True), ("requests: false", False), ("requests: no", False)],
)
def test_requests_switch_read(written: str | None, expected: bool) -> None:
    lines = () if written is None else (written,)

    [rule] = parse_policy(rule_text(*lines), PATH).rules

    assert rule.accepts_requests is expected


def test_load_policy_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(FULL, encoding="utf-8")

    policy = load_policy(path)

    assert policy.source == path
    assert policy.rules[0].location == f"{path}:4"


def test_parse_policy_expands_variables() -> None:
    text = "share:\n  - resource: ${MACHINE}\n    fields: []\n"

    [rule] = parse_policy(text, PATH, variables={"MACHINE": "cnc-9"}).rules

    assert rule.resources == {"cnc-9"}


def rule_text(*lines: str) -> str:
    return "share:\n  - resource: cnc-1\n    fields: [name]\n" + "".join(
        f"    {line}\n" for line in lines
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name, owner_phone]\n",
            [
                "3: share[0].fields[1]: unknown offer field 'owner_phone'; allowed fields: all, "
                "name, capabilities, state, state_since, horizon, free_hours, free_intervals, "
                "amounts, price, suppliers, customers"
            ],
            id="unknown-field",
        ),
        pytest.param(
            rule_text("colour: red"),
            ["4: share[0].colour: unknown key; remove it or correct its spelling"],
            id="unknown-rule-key",
        ),
        pytest.param(
            "shares:\n  - resource: cnc-1\n",
            ["1: shares: unknown key; remove it or correct its spelling"],
            id="unknown-top-key",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n",
            ["2: share[0].fields: missing required key; add it"],
            id="missing-fields",
        ),
        pytest.param(
            "share:\n  - fields: [name]\n",
            ["2: share[0]: rule has no selector; add resource:, kind: or tag:"],
            id="no-selector",
        ),
        pytest.param(
            "share:\n  - resource: [a, b]\n    publish_as: x\n    fields: []\n",
            [
                "3: share[0].publish_as: publish_as 'x' needs exactly one id in resource:, "
                "found 2; give each renamed resource its own rule"
            ],
            id="publish-as-several",
        ),
        pytest.param(
            "share:\n  - kind: machine\n    publish_as: x\n    fields: []\n",
            [
                "3: share[0].publish_as: publish_as 'x' needs exactly one id in resource:, "
                "found 0; give each renamed resource its own rule"
            ],
            id="publish-as-none",
        ),
        pytest.param(
            "share:\n  - resource: cnc/1\n    fields: [name]\n",
            [f"2: share[0].resource: invalid resource id 'cnc/1': {ID_RULE}"],
            id="invalid-resource-id",
        ),
        pytest.param(
            "share:\n  - resource: [ok, 'a b']\n    fields: [name]\n",
            [f"2: share[0].resource[1]: invalid resource id 'a b': {ID_RULE}"],
            id="invalid-id-in-list",
        ),
        pytest.param(
            rule_text("publish_as: 'frez/5'"),
            [f"4: share[0].publish_as: invalid resource id 'frez/5': {ID_RULE}"],
            id="invalid-publish-as",
        ),
        pytest.param(
            "groups:\n  'zła grupa': [a]\nshare: []\n",
            [f"2: groups.zła grupa: invalid group id 'zła grupa': {ID_RULE}"],
            id="invalid-group-name",
        ),
        pytest.param(
            rule_text("audience: {members: ['a+b']}"),
            [f"4: share[0].audience.members[0]: invalid member id 'a+b': {ID_RULE}"],
            id="invalid-member-id",
        ),
        pytest.param(
            "share:\n"
            "  - resource: a\n    publish_as: x\n    fields: []\n"
            "  - resource: b\n    publish_as: x\n    fields: []\n",
            [
                "6: share[1].publish_as: public id 'x' is already used for resource 'a' by rule 1 "
                "(line 2); two resources must not share one topic, so choose another publish_as"
            ],
            id="duplicate-publish-as",
        ),
        pytest.param(
            "share:\n"
            "  - resource: a\n    publish_as: b\n    fields: []\n"
            "  - resource: b\n    fields: []\n",
            [
                "5: share[1].resource: public id 'b' is already used for resource 'a' by rule 1 "
                "(line 2); two resources must not share one topic, so choose another publish_as"
            ],
            id="publish-as-other-id",
        ),
        pytest.param(
            rule_text("bands: {free_hours: [0, 20, 8]}"),
            [
                "4: share[0].bands.free_hours: band edges must be strictly ascending, "
                "but 8 follows 20"
            ],
            id="bands-not-ascending",
        ),
        pytest.param(
            rule_text("bands: {free_hours: [0, 8, 8]}"),
            [
                "4: share[0].bands.free_hours: band edges must be strictly ascending, "
                "but 8 follows 8"
            ],
            id="bands-repeated-edge",
        ),
        pytest.param(
            rule_text("bands:", "  pallet_places: [-5, 10]"),
            [
                "5: share[0].bands.pallet_places[0]: input should be greater than or equal to 0, "
                "got -5"
            ],
            id="bands-negative",
        ),
        pytest.param(
            rule_text("bands: {free_hours: []}"),
            ["4: share[0].bands.free_hours: list must have at least 1 item, but has 0"],
            id="bands-empty",
        ),
        pytest.param(
            rule_text("bands: {free_hours: [0, many]}"),
            ["4: share[0].bands.free_hours[1]: input should be a valid number, got 'many'"],
            id="bands-not-number",
        ),
        pytest.param(
            rule_text("bands: {free_hours: [0, 8, .inf]}"),
            [f"4: share[0].bands.free_hours[2]: band edge inf {NOT_FINITE_HINT}"],
            id="bands-infinite",
        ),
        pytest.param(
            rule_text("bands: {free_hours: [-.inf, 8]}"),
            [f"4: share[0].bands.free_hours[0]: band edge -inf {NOT_FINITE_HINT}"],
            id="bands-minus-infinite",
        ),
        pytest.param(
            rule_text("bands: {pallet_places: [0, .nan]}"),
            [f"4: share[0].bands.pallet_places[1]: band edge nan {NOT_FINITE_HINT}"],
            id="bands-not-a-number",
        ),
        pytest.param(
            rule_text("bands: {free_hours: [0, 1.0e+400]}"),
            [f"4: share[0].bands.free_hours[1]: band edge inf {NOT_FINITE_HINT}"],
            id="bands-overflow",
        ),
        pytest.param(
            rule_text("audience: {groups: [partnerzy]}"),
            [
                "4: share[0].audience.groups[0]: unknown group 'partnerzy'; define it under "
                "groups: (defined: none)"
            ],
            id="unknown-group",
        ),
        pytest.param(
            rule_text("audience: {}"),
            [
                "4: share[0].audience: empty audience: list members or groups, or write "
                "'audience: cluster'"
            ],
            id="empty-audience",
        ),
        pytest.param(
            rule_text("audience: everybody"),
            [
                "4: share[0].audience: invalid audience 'everybody': write 'cluster' or a mapping "
                "with members: and groups:"
            ],
            id="invalid-audience",
        ),
        pytest.param(
            "groups:\n  pusta: []\nshare: []\n",
            ["2: groups.pusta: list must have at least 1 item, but has 0"],
            id="empty-group",
        ),
        pytest.param(
            rule_text("horizon_days: 0"),
            ["4: share[0].horizon_days: input should be greater than or equal to 1, got 0"],
            id="horizon-too-small",
        ),
        pytest.param(
            rule_text('requests: "yes"'),
            ["4: share[0].requests: input should be true or false, got 'yes'"],
            id="requests-string",
        ),
        pytest.param(
            rule_text("requests: 0"),
            ["4: share[0].requests: input should be true or false, got 0"],
            id="requests-number",
        ),
        pytest.param(
            rule_text("requests:"),
            ["4: share[0].requests: input should be true or false, got an empty value"],
            id="requests-empty",
        ),
        pytest.param(
            rule_text("horizon_days: 367"),
            ["4: share[0].horizon_days: input should be less than or equal to 366, got 367"],
            id="horizon-too-large",
        ),
        pytest.param(
            rule_text("horizon_days: 7.5"),
            ["4: share[0].horizon_days: input should be a valid integer, got 7.5"],
            id="horizon-fraction",
        ),
        pytest.param(
            rule_text("delay_minutes: 0"),
            ["4: share[0].delay_minutes: input should be greater than or equal to 1, got 0"],
            id="delay-too-small",
        ),
        pytest.param(
            rule_text("delay_minutes: 10081"),
            ["4: share[0].delay_minutes: input should be less than or equal to 10080, got 10081"],
            id="delay-too-large",
        ),
        pytest.param(
            rule_text("round: week"),
            [
                "4: share[0].round: input should be '15min', 'hour', 'half_day', 'shift' or "
                "'day', got 'week'"
            ],
            id="invalid-round",
        ),
        pytest.param(
            rule_text("kind: robot"),
            [
                "4: share[0].kind: input should be 'machine', 'storage', 'it_capacity', "
                "'it_team' or 'supplies', got 'robot'"
            ],
            id="invalid-kind",
        ),
        pytest.param(
            rule_text("expires: 2027-01-31 18:00"),
            [
                f"4: share[0].expires: invalid expires 2027-01-31T18:00:00: the UTC offset is "
                f"missing; {EXPIRES_HINT}"
            ],
            id="expires-without-offset",
        ),
        pytest.param(
            rule_text("expires: 'next monday'"),
            [f"4: share[0].expires: invalid expires 'next monday': {EXPIRES_HINT}"],
            id="expires-text",
        ),
        pytest.param(
            rule_text("expires: 20270131"),
            [f"4: share[0].expires: invalid expires 20270131: {EXPIRES_HINT}"],
            id="expires-number",
        ),
        pytest.param(
            rule_text("expires: 2027-02-30"),
            ["4: invalid YAML: invalid date '2027-02-30' (day is out of range for month)"],
            id="expires-impossible-date",
        ),
        pytest.param(
            rule_text("labels: {'/': ''}"),
            ["4: share[0].labels./: string should have at least 1 character, got ''"],
            id="empty-label",
        ),
        pytest.param(
            rule_text("name: ''"),
            ["4: share[0].name: string should have at least 1 character, got ''"],
            id="empty-name",
        ),
        pytest.param(
            "share:\n  - resource: cnc-1\n    fields: [name\n",
            [
                "4: invalid YAML: while parsing a flow sequence, expected ',' or ']', but got "
                "'<stream end>'"
            ],
            id="malformed-yaml",
        ),
        pytest.param(
            "- cnc-1\n",
            ["1: expected a mapping with the keys 'groups:' and 'share:'"],
            id="not-a-mapping",
        ),
    ],
)
def test_load_error_names_line_and_key(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, PATH)

    assert str(caught.value).splitlines() == [f"policy.yaml:{line}" for line in expected]


PL_ID_RULE = "użyj od 1 do 64 liter, cyfr, '.', '_' lub '-', zaczynając od litery lub cyfry"
PL_EXPIRES_HINT = (
    "oczekiwano daty albo daty z godziną i przesunięciem względem UTC, np. 2027-01-31 lub "
    "2027-01-31T18:00:00+01:00"
)
FIELD_LIST = (
    "all, name, capabilities, state, state_since, horizon, free_hours, free_intervals, amounts, "
    "price, suppliers, customers"
)

# Each policy check worded in both languages: (file text, English line, Polish line).
WORDED_CASES = [
    pytest.param(
        rule_text("bands: {free_hours: [0, 8, .inf]}"),
        f"4: share[0].bands.free_hours[2]: band edge inf {NOT_FINITE_HINT}",
        "4: share[0].bands.free_hours[2]: granica przedziału inf nie jest skończoną liczbą; "
        "podaj skończone granice >= 0, a listę zakończ dolną granicą ostatniego, otwartego "
        "przedziału, np. 80 w [0, 8, 20, 40, 80]",
        id="edge-not-finite",
    ),
    pytest.param(
        rule_text("bands: {free_hours: [0, 8, 4]}"),
        "4: share[0].bands.free_hours: band edges must be strictly ascending, but 4 follows 8",
        "4: share[0].bands.free_hours: granice przedziałów muszą ściśle rosnąć, a po 8 następuje 4",
        id="edges-not-ascending",
    ),
    pytest.param(
        "groups: {g1: [a]}\n" + rule_text("audience: {groups: [nope]}"),
        "5: share[0].audience.groups[0]: unknown group 'nope'; define it under groups: "
        "(defined: g1)",
        "5: share[0].audience.groups[0]: nieznana grupa 'nope'; zdefiniuj ją w sekcji groups: "
        "(zdefiniowane: g1)",
        id="unknown-group",
    ),
    pytest.param(
        rule_text("audience: {groups: [nope]}"),
        "4: share[0].audience.groups[0]: unknown group 'nope'; define it under groups: "
        "(defined: none)",
        "4: share[0].audience.groups[0]: nieznana grupa 'nope'; zdefiniuj ją w sekcji groups: "
        "(zdefiniowane: brak)",
        id="unknown-group-none-defined",
    ),
    pytest.param(
        rule_text("audience: {members: []}"),
        "4: share[0].audience: empty audience: list members or groups, or write "
        "'audience: cluster'",
        "4: share[0].audience: pusta lista odbiorców: podaj members lub groups albo wpisz "
        "'audience: cluster'",
        id="empty-audience",
    ),
    pytest.param(
        rule_text("audience: everyone"),
        "4: share[0].audience: invalid audience 'everyone': write 'cluster' or a mapping with "
        "members: and groups:",
        "4: share[0].audience: nieprawidłowa wartość audience 'everyone': wpisz 'cluster' albo "
        "słownik z kluczami members: i groups:",
        id="invalid-audience",
    ),
    pytest.param(
        "share:\n"
        "  - resource: a\n    publish_as: x\n    fields: []\n"
        "  - resource: b\n    publish_as: x\n    fields: []\n",
        "6: share[1].publish_as: public id 'x' is already used for resource 'a' by rule 1 "
        "(line 2); two resources must not share one topic, so choose another publish_as",
        "6: share[1].publish_as: publiczny identyfikator 'x' jest już użyty dla zasobu 'a' "
        "w regule 1 (wiersz 2); dwa zasoby nie mogą dzielić jednego tematu, więc wybierz inne "
        "publish_as",
        id="duplicate-publish-as",
    ),
    pytest.param(
        "share:\n  - resource: [a, b]\n    publish_as: x\n    fields: []\n",
        "3: share[0].publish_as: publish_as 'x' needs exactly one id in resource:, found 2; "
        "give each renamed resource its own rule",
        "3: share[0].publish_as: publish_as 'x' wymaga dokładnie jednego identyfikatora "
        "w resource: (podano 2); każdy zasób o zmienionej nazwie opisz w osobnej regule",
        id="publish-as-one-id",
    ),
    pytest.param(
        rule_text("expires: tomorrow"),
        f"4: share[0].expires: invalid expires 'tomorrow': {EXPIRES_HINT}",
        f"4: share[0].expires: nieprawidłowa wartość expires 'tomorrow': {PL_EXPIRES_HINT}",
        id="invalid-expires",
    ),
    pytest.param(
        rule_text("expires: '2027-01-31T18:00:00'"),
        "4: share[0].expires: invalid expires 2027-01-31T18:00:00: the UTC offset is missing; "
        f"{EXPIRES_HINT}",
        "4: share[0].expires: nieprawidłowa wartość expires 2027-01-31T18:00:00: brak "
        f"przesunięcia względem UTC; {PL_EXPIRES_HINT}",
        id="expires-without-offset",
    ),
    pytest.param(
        rule_text("expires: 5"),
        f"4: share[0].expires: invalid expires 5: {EXPIRES_HINT}",
        f"4: share[0].expires: nieprawidłowa wartość expires 5: {PL_EXPIRES_HINT}",
        id="expires-not-date",
    ),
    pytest.param(
        "share:\n  - resource: cnc-1\n    fields: [colour]\n",
        f"3: share[0].fields[0]: unknown offer field 'colour'; allowed fields: {FIELD_LIST}",
        f"3: share[0].fields[0]: nieznane pole oferty 'colour'; dozwolone pola: {FIELD_LIST}",
        id="unknown-offer-field",
    ),
    pytest.param(
        "share:\n  - fields: [name]\n",
        "2: share[0]: rule has no selector; add resource:, kind: or tag:",
        "2: share[0]: reguła nie ma selektora; dodaj resource:, kind: lub tag:",
        id="no-selector",
    ),
    pytest.param(
        "share:\n  - resource: cnc/1\n    fields: [name]\n",
        f"2: share[0].resource: invalid resource id 'cnc/1': {ID_RULE}",
        f"2: share[0].resource: nieprawidłowy identyfikator zasobu 'cnc/1': {PL_ID_RULE}",
        id="invalid-resource-id",
    ),
    pytest.param(
        "groups:\n  'zła grupa': [a]\nshare: []\n",
        f"2: groups.zła grupa: invalid group id 'zła grupa': {ID_RULE}",
        f"2: groups.zła grupa: nieprawidłowy identyfikator grupy 'zła grupa': {PL_ID_RULE}",
        id="invalid-group-name",
    ),
    pytest.param(
        rule_text("audience: {members: ['a+b']}"),
        f"4: share[0].audience.members[0]: invalid member id 'a+b': {ID_RULE}",
        f"4: share[0].audience.members[0]: nieprawidłowy identyfikator członka 'a+b': {PL_ID_RULE}",
        id="invalid-member-id",
    ),
    pytest.param(
        "- cnc-1\n",
        "1: expected a mapping with the keys 'groups:' and 'share:'",
        "1: oczekiwano słownika z kluczami 'groups:' i 'share:'",
        id="not-a-mapping",
    ),
    pytest.param(
        rule_text('requests: "no"'),
        "4: share[0].requests: input should be true or false, got 'no'",
        "4: share[0].requests: oczekiwano true albo false (podano 'no')",
        id="requests-not-boolean",
    ),
]


@pytest.mark.parametrize(("text", "english", "polish"), WORDED_CASES)
@pytest.mark.parametrize("language", ["en", "pl"])
def test_policy_error_worded_per_language(
    monkeypatch: pytest.MonkeyPatch, language: str, text: str, english: str, polish: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    expected = english if language == "en" else polish

    with pytest.raises(ConfigError) as caught:
        parse_policy(text, PATH)

    assert str(caught.value).splitlines() == [f"policy.yaml:{expected}"]


def test_policy_language_read_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    text = rule_text("expires: tomorrow")
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    with pytest.raises(ConfigError) as polish:
        parse_policy(text, PATH)

    monkeypatch.setenv("KOOPERANT_LANG", "en")
    message_after_switch = str(polish.value)

    assert "nieprawidłowa wartość expires 'tomorrow'" in message_after_switch


def test_every_problem_reported_by_line() -> None:
    text = (
        "share:\n"
        "  - fields: [name]\n"
        "  - resource: a\n"
        "    fields: [name]\n"
        "    round: week\n"
        "    horizon_days: 0\n"
    )

    with pytest.raises(ConfigError) as caught:
        parse_policy(text, PATH)

    assert [problem.line for problem in caught.value.problems] == [5, 6]


def test_cross_key_problems_together() -> None:
    text = (
        "share:\n"
        "  - fields: [name]\n"
        "  - resource: a\n"
        "    fields: [name]\n"
        "    audience: {groups: [nieznana]}\n"
    )

    with pytest.raises(ConfigError) as caught:
        parse_policy(text, PATH)

    assert [problem.key for problem in caught.value.problems] == [
        "share[0]",
        "share[1].audience.groups[0]",
    ]


def test_missing_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as caught:
        load_policy(missing)

    assert str(caught.value) == f"{missing}: file not found; check the path"
