"""Dashboard passwords: argon2id hashing, the password rules and generated one-time passwords."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 6
# A user name shorter than this is not looked for inside the password, because two letters such as
# "ab" occur in many good passwords.
MIN_CHECKED_USERNAME_LENGTH = 3
# Unambiguous letters and digits only (no 0/O, 1/l/I), so a password read aloud or copied from a
# screen by hand comes out right. 16 of these carry about 90 bits.
_GENERATED_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_PASSWORD_LENGTH = 16

# argon2-cffi's defaults are argon2id with the parameters RFC 9106 recommends for memory-limited
# systems (t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a password against its stored hash."""

    valid: bool
    new_hash: str | None = None
    """A hash with the current parameters, set when the stored one used other parameters."""


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password`` as a PHC string."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> Verification:
    """Check ``password`` against ``stored_hash``; rehash when the parameters changed."""
    try:
        _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return Verification(valid=False)
    if _HASHER.check_needs_rehash(stored_hash):
        return Verification(valid=True, new_hash=_HASHER.hash(password))
    return Verification(valid=True)


def password_problem(password: str, username: str) -> str | None:
    """Return the message id saying why ``password`` is not allowed, or ``None`` if it is.

    Control characters (Unicode category Cc: NUL, tab and the rest of C0, DEL and C1) are not
    allowed, because a sign-in form cannot carry some of them and others hide in a terminal.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return "password_too_short"
    if not password.strip():
        return "password_only_whitespace"
    if any(unicodedata.category(character) == "Cc" for character in password):
        return "password_control_character"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return "password_too_few_distinct"

    name = username.strip().lower()
    if password.strip().lower() == name:
        return "password_is_username"
    if len(name) >= MIN_CHECKED_USERNAME_LENGTH and name in password.lower():
        return "password_contains_username"
    return None


def generate_password(username: str = "") -> str:
    """Return a random one-time password for a new account or a reset of ``username``.

    A draw that breaks the password rules (very rare with 16 random characters) is drawn again.
    """
    while True:
        password = "".join(
            secrets.choice(_GENERATED_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH)
        )
        if password_problem(password, username) is None:
            return password
