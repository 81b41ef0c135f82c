"""The language of user-facing text, the override for log lines, and the .po catalogues."""

from __future__ import annotations

import re
from pathlib import Path
from string import Formatter

import pytest
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.catalog import Message
from babel.messages.pofile import read_po

from kooperant.i18n import Catalog, current_language, use_language
from tests.conftest import REPO_ROOT

MESSAGES = Catalog({"greeting": {"pl": "Dzień dobry, {name}", "en": "Good morning, {name}"}})


def test_environment_chooses_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "en_GB.UTF-8")

    assert current_language() == "en"
    assert MESSAGES("greeting", name="Ola") == "Good morning, Ola"


def test_polish_is_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("KOOPERANT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)

    assert current_language() == "pl"


def test_use_language_overrides_inside_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")

    with use_language("en"):
        inside = MESSAGES("greeting", name="Ola")
    after = MESSAGES("greeting", name="Ola")

    assert inside == "Good morning, Ola"
    assert after == "Dzień dobry, Ola"


# Messages whose translations use different fields on purpose: the English text quotes the
# English error of PyYAML, pydantic or Python in {detail} or {error}, and the Polish text explains
# each case in its own words, with the fields that case needs.
DIFFERENT_FIELDS_CONTEXT = "agent.validation_messages"
DIFFERENT_FIELDS_PREFIXES = ("yaml.", "value.")
PO_FILES = sorted(REPO_ROOT.glob("*/locale/*/LC_MESSAGES/*.po"))


def read_catalog(path: Path) -> PoCatalog:
    with path.open("rb") as handle:
        return read_po(handle)


def entries(path: Path) -> dict[tuple[str, str], Message]:
    return {
        (message.context or "", str(message.id)): message
        for message in read_catalog(path)
        if message.id
    }


def format_fields(text: str) -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(text) if field is not None}


def package_catalogs() -> list[tuple[str, Path, Path]]:
    packages = sorted({path.parts[-5] for path in PO_FILES})
    return [
        (
            package,
            REPO_ROOT / package / "locale" / "pl" / "LC_MESSAGES" / f"{package}.po",
            REPO_ROOT / package / "locale" / "en" / "LC_MESSAGES" / f"{package}.po",
        )
        for package in packages
    ]


def test_catalogues_exist_for_each_package() -> None:
    packages = [package for package, _, _ in package_catalogs()]

    assert {"agent", "kooperant"} <= set(packages)
    for _, polish, english in package_catalogs():
        assert polish.is_file(), polish
        assert english.is_file(), english


@pytest.mark.parametrize(("package", "polish", "english"), package_catalogs())
def test_catalogues_complete(package: str, polish: Path, english: Path) -> None:
    polish_entries = entries(polish)
    english_entries = entries(english)

    assert [key for key in polish_entries if not key[0]] == [], "entries without msgctxt"
    assert sorted(set(polish_entries) - set(english_entries)) == [], "missing in English"
    assert sorted(set(english_entries) - set(polish_entries)) == [], "missing in Polish"
    for key, message in {**polish_entries, **english_entries}.items():
        assert message.string, f"{package}: {key} is empty"
        assert not message.fuzzy, f"{package}: {key} is fuzzy"


@pytest.mark.parametrize(("package", "polish", "english"), package_catalogs())
def test_translations_keep_format_fields(package: str, polish: Path, english: Path) -> None:
    english_entries = entries(english)

    for key, message in entries(polish).items():
        context, message_id = key
        if context == DIFFERENT_FIELDS_CONTEXT and message_id.startswith(DIFFERENT_FIELDS_PREFIXES):
            continue
        other = english_entries[key]
        assert format_fields(str(message.string)) == format_fields(str(other.string)), key


def test_every_context_belongs_to_a_module() -> None:
    contexts = {
        context
        for path in PO_FILES
        for context, _ in entries(path)
        if context != "agent.opcua_client"
    }

    missing = sorted(
        context
        for context in contexts
        if not (REPO_ROOT / Path(*context.split("."))).with_suffix(".py").is_file()
    )

    assert contexts
    assert missing == []


def test_for_module_reads_every_module_catalogue() -> None:
    contexts = {context for path in PO_FILES for context, _ in entries(path)}

    for context in sorted(contexts - {"agent.opcua_client"}):
        catalog = Catalog.for_module(context)
        assert catalog.ids(), context


def test_for_module_names_untranslated_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "demo_i18n_package"
    for language, text in (("pl", "Cześć"), ("en", "")):
        folder = package / "locale" / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "demo_i18n_package.po").write_text(
            f'msgctxt "demo_i18n_package.cli"\nmsgid "hello"\nmsgstr "{text}"\n', "utf-8"
        )
    (package / "__init__.py").write_text("", "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ValueError, match=r"en/LC_MESSAGES/demo_i18n_package\.po") as raised:
        Catalog.for_module("demo_i18n_package.cli")

    assert "'hello'" in str(raised.value)


# A literal message id passed to a module's catalogue: MESSAGES("id" in the server, _("id" in the
# command modules, t("id" in the dashboard templates. Ids built at run time (f-strings) are left
# to the tests of their pages and commands.
CATALOGUE_CALL = re.compile(r"""\b(?:MESSAGES|_|t)\(\s*["']([A-Za-z0-9_.\-]+)["']""")


OWN_CATALOGUE = " = Catalog.for_module(__name__"


def literal_ids(text: str) -> set[str]:
    """Return the literal ids; a prefix such as "role_" that a template extends is left out."""
    return {message_id for message_id in CATALOGUE_CALL.findall(text) if message_id[-1] not in "_."}


def test_server_messages_used_exist() -> None:
    known = set(Catalog.for_module("server.messages").ids())
    sources = [*(REPO_ROOT / "server").rglob("*.py"), *(REPO_ROOT / "server").rglob("*.html")]
    # A module with a catalogue of its own is checked by test_command_messages_used_exist.
    sources = [path for path in sources if OWN_CATALOGUE not in path.read_text("utf-8")]

    used = {
        (path.relative_to(REPO_ROOT).as_posix(), message_id)
        for path in sources
        for message_id in literal_ids(path.read_text("utf-8"))
    }
    unknown = sorted(item for item in used if item[1] not in known)

    assert len(used) > 100
    assert unknown == []


def test_command_messages_used_exist() -> None:
    modules = [
        path
        for package in ("agent", "kooperant", "server")
        for path in (REPO_ROOT / package).rglob("*.py")
        if OWN_CATALOGUE in path.read_text("utf-8")
    ]

    unknown = []
    for path in modules:
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        text = path.read_text("utf-8")
        shared = ("agent.opcua_client",) if "OPCUA_CLIENT_CONTEXT" in text else ()
        known = set(Catalog.for_module(module, shared=shared).ids())
        unknown += [(module, item) for item in sorted(literal_ids(text) - known)]

    assert len(modules) >= 10
    assert unknown == []
