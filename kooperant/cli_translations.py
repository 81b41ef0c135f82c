"""Polish for the help and usage-error text that typer generates around kooperant's own messages.

Typer 0.29 renders help and errors itself (``typer.rich_utils``) and vendors click as
``typer._click``, whose texts are plain English literals, not gettext calls. So the texts reach
the user through four routes, and ``install`` hooks each:

- ``typer.core`` calls the module-level ``_`` (gettext) when a command runs, so ``_`` is replaced
  with a catalogue lookup;
- ``typer.rich_utils`` computes its panel titles and labels (``OPTIONS_PANEL_TITLE`` and so on)
  once, at import, so they are set again before every help or error output;
- help texts of the options typer adds itself (``--help``, ``--install-completion``) are fixed
  English strings, and are replaced on each parameter when help is shown;
- usage errors are formatted English sentences, so their ``format_message`` results are matched
  against the English templates here and rebuilt in Polish, and the "Usage: " prefix is passed to
  ``HelpFormatter.write_usage``.

The catalogue entries use ``msgctxt`` ``kooperant.cli_translations`` with the exact English text
as ``msgid``. A text without an entry stays English, and a hook whose typer module or attribute is
missing in another typer version is skipped. The language is read on every call, so one process
can show help in both languages one after the other.

NOTE: still English under Polish: the detail that pydantic gives for an invalid value ("Input
should be ..."), and the plain-text error output typer uses when rich is not installed.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from string import Formatter
from types import ModuleType
from typing import Any

from kooperant import option_hints
from kooperant.i18n import LANGUAGES, Catalog

_ = Catalog.for_module(__name__)

# Names of the typer.rich_utils constants that typer computes with gettext at import time.
RICH_UTILS_TEXTS = (
    "DEPRECATED_STRING",
    "DEFAULT_STRING",
    "ENVVAR_STRING",
    "REQUIRED_LONG_STRING",
    "ARGUMENTS_PANEL_TITLE",
    "OPTIONS_PANEL_TITLE",
    "COMMANDS_PANEL_TITLE",
    "ERRORS_PANEL_TITLE",
    "ABORTED_TEXT",
    "RICH_HELP",
)
USAGE_PREFIX = "Usage: "
# Marks a function that this module has already wrapped, so a second install wraps nothing twice.
WRAPPED_MARK = "_kooperant_translated"

_installed = False


def translate(message: str) -> str:
    """Return the current-language catalogue text whose English ``msgid`` is ``message``.

    The text keeps its format fields unfilled, like gettext. A message without an entry is
    returned unchanged.
    """
    if message in _message_ids():
        return _.template(message)
    return message


def translate_formatted(message: str) -> str:
    """Translate a message whose format fields are already filled in, such as a usage error.

    The message is matched against the English templates of the catalogue, the longest literal
    text first so that a specific template wins over a generic one. A field named ``message``
    holds another message and is translated as well. A message that matches no template is
    returned unchanged.
    """
    exact = translate(message)
    if exact != message:
        return exact
    for template, pattern in _template_patterns():
        match = pattern.fullmatch(message)
        if match is not None:
            values = match.groupdict()
            if "message" in values:
                values["message"] = translate_formatted(values["message"])
            return _fill(_.template(template), values)
    return message


def translate_help(text: str | None) -> str | None:
    """Translate a fixed English help text, or a translation of it shown earlier, if it has one."""
    if text is None:
        return None
    return translate(_english_help_texts().get(text, text))


def install() -> None:
    """Hook the current-language catalogue into typer's help and error output, once per process."""
    global _installed
    if _installed:
        return
    _installed = True

    core = _import("typer.core")
    if core is not None and callable(getattr(core, "_", None)):
        core._ = translate  # type: ignore[attr-defined]

    rich_utils = _import("typer.rich_utils")
    if rich_utils is not None:
        _hook_rich_utils(rich_utils)

    formatting = _import("typer._click.formatting")
    formatter_class = getattr(formatting, "HelpFormatter", None)
    if formatter_class is not None:
        _wrap_attribute(formatter_class, "write_usage", _translated_write_usage)

    exceptions = _import("typer._click.exceptions")
    if exceptions is not None:
        _hook_exceptions(exceptions)
        option_hints.install(exceptions)


def _hook_rich_utils(rich_utils: ModuleType) -> None:
    english = {
        name: getattr(rich_utils, name) for name in RICH_UTILS_TEXTS if hasattr(rich_utils, name)
    }

    def refresh_texts() -> None:
        for name, text in english.items():
            setattr(rich_utils, name, translate(text))

    def translated_help(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refresh_texts()
            command = kwargs.get("obj")
            context = kwargs.get("ctx")
            if command is not None and context is not None:
                for parameter in command.get_params(context):
                    parameter.help = translate_help(parameter.help)
            return original(*args, **kwargs)

        return wrapper

    def translated_output(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refresh_texts()
            return original(*args, **kwargs)

        return wrapper

    _wrap_attribute(rich_utils, "rich_format_help", translated_help)
    _wrap_attribute(rich_utils, "rich_format_error", translated_output)
    _wrap_attribute(rich_utils, "rich_abort_error", translated_output)


def _hook_exceptions(exceptions: ModuleType) -> None:
    base = getattr(exceptions, "ClickException", None)
    if not isinstance(base, type):
        return
    # The base class inherits format_message from TyperException in typer 0.29, so it is wrapped
    # whether or not it defines the method itself. Subclasses that override it are wrapped too.
    _wrap_attribute(base, "format_message", _translated_format_message)
    for value in vars(exceptions).values():
        if isinstance(value, type) and issubclass(value, base) and "format_message" in vars(value):
            _wrap_attribute(value, "format_message", _translated_format_message)


def _translated_write_usage(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any, prog: str, args: str = "", prefix: str | None = None) -> Any:
        if prefix is None:
            prefix = translate(USAGE_PREFIX)
        return original(self, prog, args, prefix)

    return wrapper


def _translated_format_message(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: Any) -> Any:
        message = original(self)
        return translate_formatted(message) if isinstance(message, str) else message

    return wrapper


def _wrap_attribute(
    owner: object, name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    original = getattr(owner, name, None)
    if not callable(original) or getattr(original, WRAPPED_MARK, False):
        return
    wrapper = wrap(original)
    setattr(wrapper, WRAPPED_MARK, True)
    setattr(owner, name, wrapper)


def _import(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _fill(template: str, values: dict[str, str]) -> str:
    """Put the already converted ``values`` into ``template``, ignoring its ``!r`` conversions."""
    parts = []
    for literal, field, _spec, _conversion in Formatter().parse(template):
        parts.append(literal)
        if field is not None:
            parts.append(values[field])
    return "".join(parts)


@functools.cache
def _message_ids() -> frozenset[str]:
    return frozenset(_.ids())


@functools.cache
def _template_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """Return a regular expression for each catalogue text with named fields, longest first."""
    patterns = []
    for template in _.ids():
        parsed = list(Formatter().parse(template))
        fields = [field for _literal, field, _spec, _conversion in parsed if field is not None]
        if not fields or "" in fields or len(set(fields)) != len(fields):
            continue
        regex = "".join(
            re.escape(literal) + (f"(?P<{field}>.+?)" if field is not None else "")
            for literal, field, _spec, _conversion in parsed
        )
        literal_length = sum(len(literal) for literal, *_rest in parsed)
        patterns.append((literal_length, template, re.compile(regex, re.DOTALL)))
    patterns.sort(key=lambda entry: entry[0], reverse=True)
    return [(template, pattern) for _length, template, pattern in patterns]


@functools.cache
def _english_help_texts() -> dict[str, str]:
    """Return the English ``msgid`` for the text of every entry in every language."""
    return {_.template(message, language): message for message in _.ids() for language in LANGUAGES}
