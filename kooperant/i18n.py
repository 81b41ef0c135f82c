"""User-facing text in Polish and English.

Messages live in gettext catalogues, one per top-level package and language:
``PACKAGE/locale/{pl,en}/LC_MESSAGES/PACKAGE.po``. Each entry's ``msgctxt`` is the dotted name of
the module that uses it and its ``msgid`` a short id, so ``Catalog.for_module(__name__)`` gives a
module its messages. Texts use ``str.format`` fields (flag ``python-brace-format``). The .po files
are read with Babel when a module is imported, and a message missing, empty or fuzzy in either
language raises ``ValueError`` there. The language comes from
``KOOPERANT_LANG``, then from the POSIX locale variables; Polish is the default because the first
users work in Polish. Log lines and exceptions meant for developers stay English and do not go
through a catalogue. Code that builds catalogued text for a log line, such as a running agent
reporting an invalid policy edit, wraps it in ``use_language("en")``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.pofile import read_po

Language = Literal["pl", "en"]
LANGUAGES: tuple[Language, ...] = ("pl", "en")
DEFAULT_LANGUAGE: Language = "pl"

_override: ContextVar[Language | None] = ContextVar("kooperant_language", default=None)


@contextlib.contextmanager
def use_language(language: Language) -> Iterator[None]:
    """Make ``current_language`` return ``language`` inside the block, in this context only."""
    token = _override.set(language)
    try:
        yield
    finally:
        _override.reset(token)


def current_language() -> Language:
    """Return the language for user-facing text, read from the environment on every call."""
    override = _override.get()
    if override is not None:
        return override
    for variable in ("KOOPERANT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable, "").strip().lower()
        if value.startswith("pl"):
            return "pl"
        if value.startswith("en"):
            return "en"
    return DEFAULT_LANGUAGE


def format_decimal(value: float, language: Language) -> str:
    """Return ``value`` with every digit of its shortest repr, never in exponent notation.

    Polish gets a decimal comma and English a point: ``1,5`` and ``1.5``, ``0,00001`` for
    ``1e-05``, and ``3`` for ``3.0``.
    """
    if not math.isfinite(value):
        return str(value)
    text = format(Decimal(repr(value)).normalize(), "f")
    return text.replace(".", ",") if language == "pl" else text


class Catalog:
    """Messages of one package: ``{id: {"pl": text, "en": text}}`` with ``str.format`` fields."""

    def __init__(self, messages: Mapping[str, Mapping[Language, str]]) -> None:
        for message_id, texts in messages.items():
            missing = [language for language in LANGUAGES if language not in texts]
            if missing:
                raise ValueError(f"message {message_id!r} has no text for {missing}")
        self._messages = messages

    @classmethod
    def for_module(cls, module: str, shared: tuple[str, ...] = ()) -> Catalog:
        """Return the messages whose ``msgctxt`` is ``module``, from its package's .po files.

        ``shared`` names further contexts of the same package whose messages are included.
        Raise ``ValueError`` naming the file and id of a message that one language lacks.
        """
        package = module.partition(".")[0]
        texts: dict[str, dict[Language, str]] = {}
        for language in LANGUAGES:
            by_context = _po_messages(package, language)
            for context in (module, *shared):
                for message_id, text in by_context.get(context, {}).items():
                    texts.setdefault(message_id, {})[language] = text
        if not texts:
            raise ValueError(f"no messages for {module} in {_po_name(package, 'pl')}")
        for message_id, by_language in texts.items():
            for language in LANGUAGES:
                if language not in by_language:
                    raise ValueError(
                        f"{_po_name(package, language)}: message {message_id!r} of {module} "
                        "is missing, empty or fuzzy"
                    )
        return cls(texts)

    def ids(self) -> list[str]:
        """Return the message ids of this catalogue."""
        return list(self._messages)

    def template(self, message_id: str, language: Language | None = None) -> str:
        """Return the message in ``language`` (default: current) with its fields not filled in."""
        return self._messages[message_id][language or current_language()]

    def __call__(self, message_id: str, language: Language | None = None, **fields: object) -> str:
        """Return the message in ``language`` (default: current) with ``fields`` filled in."""
        texts = self._messages[message_id]
        return texts[language or current_language()].format(**fields)


def _po_name(package: str, language: Language) -> str:
    return f"{package}/locale/{language}/LC_MESSAGES/{package}.po"


@cache
def _po_messages(package: str, language: Language) -> dict[str, dict[str, str]]:
    """Return the translated messages of ``package``'s .po file by context, then by id.

    Empty and fuzzy translations are left out, as gettext does.
    """
    path = resources.files(package).joinpath("locale", language, "LC_MESSAGES", f"{package}.po")
    with path.open("rb") as handle:
        catalog: PoCatalog = read_po(handle, locale=language, domain=package)
    messages: dict[str, dict[str, str]] = {}
    for message in catalog:
        if not message.id or not message.string or message.fuzzy:
            continue
        if not isinstance(message.id, str) or not isinstance(message.string, str):
            raise ValueError(f"{_po_name(package, language)}: plural forms are not supported")
        messages.setdefault(message.context or "", {})[message.id] = message.string
    return messages
