"""Better hints in click's "No such option" error of the ``kooperant`` command.

Click suggests options with ``difflib.get_close_matches`` at its default cutoff of 0.6 on the
whole option name, so the shared leading ``--`` alone makes unrelated names look close:
``--bogus`` got "Possible options: --host". ``install`` rewraps ``NoSuchOption.__init__`` so that

- a suggestion must be close without the dashes (ratio ``SUGGESTION_CUTOFF``), and
- an option of ``kooperant`` itself (``--log-file``, ``--verbose``, ...) given after a
  sub-command gets a message that asks to put it before the sub-command, with the corrected
  command line, instead of a list of the sub-command's options.

The new message is an English catalogue ``msgid`` of ``kooperant.cli_translations``, so the
format_message hook of ``kooperant.cli_translations`` turns it into Polish.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from typing import Any

# Minimum difflib ratio between two option names without their leading dashes for a suggestion.
# At 0.7, --prot gets --port (0.75) and --bogus no longer gets --host (0.44).
SUGGESTION_CUTOFF = 0.7
ROOT_OPTION_HINT = (
    "No such option: {name}. It is an option of {program} itself, so put it before the "
    "sub-command: {example}"
)


def close_options(name: str, candidates: Sequence[str]) -> list[str]:
    """Return the names in ``candidates`` that are close to ``name``, ignoring leading dashes."""
    by_bare_name = {candidate.lstrip("-"): candidate for candidate in candidates}
    bare = difflib.get_close_matches(
        name.lstrip("-"), list(by_bare_name), n=3, cutoff=SUGGESTION_CUTOFF
    )
    return [by_bare_name[match] for match in bare]


def root_option_hint(name: str, ctx: Any) -> str | None:
    """Return the hint for a root option ``name`` given to a sub-command, or ``None``.

    ``ctx`` is the click context of the sub-command that rejected the option.
    """
    if ctx is None or ctx.parent is None:
        return None
    root = ctx.find_root()
    option = next(
        (param for param in root.command.params if name in getattr(param, "opts", ())), None
    )
    if option is None:
        return None

    program = root.info_name or "kooperant"
    usage = name if getattr(option, "is_flag", False) else f"{name} {option.metavar or 'VALUE'}"
    sub_command = ctx.command_path.removeprefix(program).strip()
    example = f"{program} {usage} {sub_command} …"
    return ROOT_OPTION_HINT.format(name=name, program=program, example=example)


def install(exceptions: Any) -> None:
    """Wrap ``NoSuchOption.__init__`` of the click module ``exceptions``, if it has one."""
    no_such_option = getattr(exceptions, "NoSuchOption", None)
    original = getattr(no_such_option, "__init__", None)
    if no_such_option is None or original is None or getattr(original, "_kooperant_hints", False):
        return
    no_such_option.__init__ = _with_hints(original)


def _with_hints(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def wrapper(
        self: Any,
        option_name: str,
        message: str | None = None,
        possibilities: Sequence[str] | None = None,
        ctx: Any = None,
    ) -> None:
        hint = root_option_hint(option_name, ctx) if message is None else None
        if hint is not None:
            original(self, option_name, hint, None, ctx)
            return
        close = close_options(option_name, possibilities or ())
        original(self, option_name, message, close, ctx)

    wrapper._kooperant_hints = True  # type: ignore[attr-defined]
    return wrapper
