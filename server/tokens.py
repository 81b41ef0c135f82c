"""Per-member API tokens: the tokens file, new tokens, and the check of a presented token.

The tokens file is YAML, a list with one entry per token::

    - cluster: "pomorskie-metal"
      member: "acme"
      token_sha256: "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"

Only the SHA-256 of each token (64 hexadecimal digits) is stored, so the file reveals no token.
A member may have several tokens, for example while one replaces another. Values are read as
the text written, so ``member: 0123`` is the id ``0123`` and not a YAML number.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from kooperant.protocol import TopicError, check_identifier
from server.errors import InvalidSettingError, TokensFileError, TokensProblem
from server.messages import MESSAGES
from server.storage import Viewer

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32
ENTRY_KEYS = ("cluster", "member", "token_sha256")
# How often a running server looks at the file's size and modification time.
RELOAD_CHECK_SECONDS = 1.0
NEW_FILE_MODE = 0o600

_HASH = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One token of the file: whose it is and the SHA-256 of the token, in lowercase hex."""

    cluster: str
    member: str
    token_sha256: str
    line: int


def hash_token(token: str) -> str:
    """Return the SHA-256 of ``token`` (UTF-8) as 64 lowercase hexadecimal digits."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens_file(path: Path) -> tuple[TokenEntry, ...]:
    """Return the entries of the tokens file at ``path``, or raise ``TokensFileError``.

    A file without entries is an error too, because with it the server would reject every
    request with 401.
    """
    entries = parse_tokens(_read_text(path), path)
    if not entries:
        problem = TokensProblem(None, "", "tokens_empty", {"path": str(path)})
        raise TokensFileError(path, [problem])
    return entries


def parse_tokens(text: str, path: Path) -> tuple[TokenEntry, ...]:
    """Return the entries in ``text``, read from ``path``, or raise ``TokensFileError``.

    Every problem of the file is reported at once, each with its line. A file without entries
    gives an empty tuple, so that ``add_token`` can append the first one.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        detail = ", ".join(part for part in (error.context, error.problem) if part)
        line = mark.line + 1 if mark is not None else None
        problem = TokensProblem(line, "", "tokens_yaml", {"detail": detail})
        raise TokensFileError(path, [problem]) from error
    except yaml.YAMLError as error:
        problem = TokensProblem(None, "", "tokens_yaml", {"detail": str(error)})
        raise TokensFileError(path, [problem]) from error

    if root is None:
        return ()
    if not isinstance(root, yaml.SequenceNode):
        raise TokensFileError(path, [TokensProblem(_line(root), "", "tokens_not_list")])

    problems: list[TokensProblem] = []
    entries = [_entry(node, index, problems) for index, node in enumerate(root.value)]
    found = [entry for entry in entries if entry is not None]
    problems += _duplicate_hashes(found)
    if problems:
        raise TokensFileError(path, problems)
    return tuple(found)


def _entry(node: yaml.Node, index: int, problems: list[TokensProblem]) -> TokenEntry | None:
    where = f"[{index}]"
    if not isinstance(node, yaml.MappingNode):
        problems.append(TokensProblem(_line(node), where, "tokens_entry_not_mapping"))
        return None

    values: dict[str, str] = {}
    count = len(problems)
    for key_node, value_node in node.value:
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        key_path = f"{where}.{key}"
        if key not in ENTRY_KEYS:
            problems.append(TokensProblem(_line(key_node), key_path, "tokens_key_unknown"))
        elif key in values:
            problems.append(TokensProblem(_line(key_node), key_path, "tokens_key_duplicate"))
        elif not isinstance(value_node, yaml.ScalarNode):
            problems.append(TokensProblem(_line(value_node), key_path, "tokens_value_not_text"))
        else:
            values[key] = str(value_node.value).strip()
            problems += _value_problems(key, values[key], _line(value_node), key_path)

    for key in ENTRY_KEYS:
        if key not in values and not any(p.key == f"{where}.{key}" for p in problems[count:]):
            problems.append(TokensProblem(_line(node), f"{where}.{key}", "tokens_key_missing"))
    if len(problems) > count:
        return None
    return TokenEntry(
        cluster=values["cluster"],
        member=values["member"],
        token_sha256=values["token_sha256"].lower(),
        line=_line(node),
    )


def _value_problems(key: str, value: str, line: int, key_path: str) -> list[TokensProblem]:
    if key == "token_sha256":
        # The value is not repeated: a token pasted here by mistake must not reach a log.
        if _HASH.fullmatch(value):
            return []
        return [TokensProblem(line, key_path, "tokens_hash_invalid")]
    try:
        check_identifier(value, key)
    except TopicError:
        return [TokensProblem(line, key_path, "tokens_id_invalid", {"value": value})]
    return []


def _duplicate_hashes(entries: list[TokenEntry]) -> list[TokensProblem]:
    first_line: dict[str, int] = {}
    problems = []
    for index, entry in enumerate(entries):
        if entry.token_sha256 in first_line:
            fields = {"line": first_line[entry.token_sha256]}
            problems.append(
                TokensProblem(entry.line, f"[{index}].token_sha256", "tokens_hash_repeated", fields)
            )
        else:
            first_line[entry.token_sha256] = entry.line
    return problems


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise TokensFileError(path, [TokensProblem(None, "", "tokens_not_found")]) from error
    except UnicodeDecodeError as error:
        problem = TokensProblem(None, "", "tokens_not_utf8", {"position": error.start})
        raise TokensFileError(path, [problem]) from error
    except OSError as error:
        problem = TokensProblem(None, "", "tokens_unreadable", {"detail": error.strerror})
        raise TokensFileError(path, [problem]) from error


class TokenStore:
    """The tokens of one file, read again when the file's size or modification time changes.

    An invalid new content, or one without entries, is logged at ERROR once and the last valid
    tokens stay in force, so a half-written file neither rejects the tokens known so far nor
    accepts new ones.
    """

    def __init__(
        self,
        path: Path,
        entries: tuple[TokenEntry, ...],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._entries = entries
        self._monotonic = monotonic
        self._signature = _signature(path)
        self._checked_at = monotonic()

    @classmethod
    def load(cls, path: Path, *, monotonic: Callable[[], float] = time.monotonic) -> TokenStore:
        """Read the tokens file at ``path``; raise ``TokensFileError`` if it is invalid."""
        entries = load_tokens_file(path)
        logger.info("Loaded %d API tokens from %s", len(entries), path)
        return cls(path, entries, monotonic=monotonic)

    def viewer_for(self, token: str) -> Viewer | None:
        """Return the member whose token ``token`` is, or ``None`` for an unknown token.

        Every stored hash is compared with ``hmac.compare_digest`` and the loop never stops
        early, so the time taken does not tell how much of a hash matched.
        """
        self._reload_if_changed()
        digest = hash_token(token)
        found: TokenEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.token_sha256):
                found = entry
        return Viewer(found.cluster, found.member) if found is not None else None

    def has_member(self, cluster: str, member: str) -> bool:
        """Return whether the file has a token of ``cluster/member``."""
        self._reload_if_changed()
        return any((entry.cluster, entry.member) == (cluster, member) for entry in self._entries)

    def _reload_if_changed(self) -> None:
        now = self._monotonic()
        if now - self._checked_at < RELOAD_CHECK_SECONDS:
            return
        self._checked_at = now
        signature = _signature(self.path)
        if signature == self._signature:
            return

        self._signature = signature
        try:
            self._entries = load_tokens_file(self.path)
        except TokensFileError as error:
            logger.error(
                "Rejected the changed tokens file %s, so the previous %d API tokens stay in force "
                "until the file is fixed:\n%s",
                self.path,
                len(self._entries),
                "\n".join(error.problem_lines("en")),
            )
            return
        logger.info("Reloaded %d API tokens from %s", len(self._entries), self.path)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def add_token(path: Path, cluster: str, member: str, *, now: datetime | None = None) -> str:
    """Append a new random token of ``cluster/member`` to the file at ``path``; return it.

    The file is created when missing. The token itself is returned once and never stored; the
    file gets its SHA-256. The new content replaces the file in one rename, so a server
    reading the file never sees half of it.
    """
    for id_kind, value in (("cluster", cluster), ("member", member)):
        try:
            check_identifier(value, id_kind)
        except TopicError as error:
            raise InvalidSettingError(f"{id_kind}_invalid", value=value) from error

    exists = path.exists()
    old_text = _read_text(path) if exists else MESSAGES("tokens_file_header") + "\n"
    old_count = len(parse_tokens(old_text, path))

    token = secrets.token_urlsafe(TOKEN_BYTES)
    added_at = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    separator = "" if not old_text or old_text.endswith("\n") else "\n"
    new_text = (
        f"{old_text}{separator}# added {added_at}\n"
        f'- cluster: "{cluster}"\n'
        f'  member: "{member}"\n'
        f'  token_sha256: "{hash_token(token)}"\n'
    )
    # A file written as a flow list, such as "[{...}]", cannot take a block entry at its end.
    try:
        appended = len(parse_tokens(new_text, path)) == old_count + 1
    except TokensFileError:
        appended = False
    if not appended:
        raise TokensFileError(path, [TokensProblem(None, "", "tokens_append_failed")])

    mode = path.stat().st_mode & 0o777 if exists else NEW_FILE_MODE
    _replace_file(path, new_text, mode)
    return token


def _replace_file(path: Path, text: str, mode: int) -> None:
    folder = path.parent
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        problem = TokensProblem(None, "", "tokens_unwritable", {"detail": error.strerror})
        raise TokensFileError(path, [problem]) from error
