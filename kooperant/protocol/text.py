"""The rule for control and format characters in free text that people send each other.

Text from a requester or an owner reaches the other side in listings, terminals and e-mails. A
control character (Unicode category Cc, such as a line break or an escape) or a format character
(Cf, such as the bidirectional overrides U+202A to U+202E and U+2066 to U+2069) could break a
listing or hide and reorder what the reader sees, so such fields reject them. A multi-line field
names the characters it allows, line feed and tab.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

MULTI_LINE_ALLOWED = frozenset("\n\t")
_NAMES = {"\n": "line feed", "\t": "tab"}


@dataclass(frozen=True, slots=True)
class ControlCharacter:
    """The first control or format character found in a text, and its position (1-based)."""

    character: str
    position: int

    @property
    def code_point(self) -> str:
        return f"U+{ord(self.character):04X}"

    @property
    def kind(self) -> str:
        """``control`` for category Cc, ``format`` for Cf."""
        return "control" if unicodedata.category(self.character) == "Cc" else "format"


def find_control_character(
    text: str, allowed: frozenset[str] = frozenset()
) -> ControlCharacter | None:
    """Return the first character of ``text`` in category Cc or Cf and not in ``allowed``."""
    for index, character in enumerate(text):
        if character in allowed:
            continue
        if unicodedata.category(character) in ("Cc", "Cf"):
            return ControlCharacter(character, index + 1)
    return None


def control_character_problem(
    text: str, where: str, message: str, allowed: frozenset[str] = frozenset()
) -> str | None:
    """Return why ``text`` at ``where`` of a ``message`` is invalid, or None if it is valid."""
    found = find_control_character(text, allowed)
    if found is None:
        return None
    permitted = ""
    if allowed:
        names = " and ".join(sorted(_NAMES.get(item, f"U+{ord(item):04X}") for item in allowed))
        permitted = f"; of these characters only {names} are allowed"
    return (
        f"invalid {message} at {where}: character {found.code_point} at position "
        f"{found.position} is a {found.kind} character; remove it{permitted}"
    )
