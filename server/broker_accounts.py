"""Members' broker accounts in a Mosquitto password file.

Mosquitto 2 reads a password file with one ``user:hash`` line per account. Lines that start with
``#`` and blank lines are ignored. ``mosquitto_passwd`` writes the hash in Mosquitto's ``$7$``
format, which this module writes too::

    user:$7$101$<base64 salt>$<base64 key>

The key is PBKDF2-HMAC-SHA512 of the UTF-8 password over 101 iterations with a random 12-byte
salt, 64 bytes long, and both are standard base64 with padding. The broker's user name of a
member is its member id, so the ACL pattern ``kooperant/v1/CLUSTER/%u/#`` gives each member its
own topics. The user name ``aggregator`` is reserved for the aggregator's account, which may read
every member's topics.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from kooperant.protocol import TopicError, check_identifier
from server.errors import InvalidSettingError, MosquittoPasswordFileError
from server.messages import MESSAGES
from server.storage import Storage

PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
KEY_BYTES = 64
PASSWORD_BYTES = 24
NEW_FILE_MODE = 0o600
AGGREGATOR_USER = "aggregator"

_HASH_PREFIX = "$7$"


class PasswordFileChange(StrEnum):
    """The change that writing a user's line made to the password file."""

    CREATED = "created"
    """The file did not exist and now contains only this line."""
    ADDED = "added"
    """The line was appended to an existing file."""
    REPLACED = "replaced"
    """The user's earlier line was replaced."""


@dataclass(frozen=True)
class MemberAccount:
    """A member's new broker account: its user name is the member id.

    ``password_file_change`` is ``None`` when no password file was written.
    """

    cluster: str
    member: str
    password: str = field(repr=False)
    newly_registered: bool
    password_file_change: PasswordFileChange | None
    # Members that sent offers without a registration, which ingest rejects from now on,
    # because this was the cluster's first registration.
    cut_off: tuple[str, ...] = ()


def add_member_account(
    storage: Storage,
    cluster: str,
    member: str,
    *,
    password_file: Path | None,
    new_password: bool,
    now: datetime,
) -> MemberAccount:
    """Register ``member`` of ``cluster`` and give it a new random broker password.

    The password goes into ``password_file`` when one is given. A member that is already
    registered is rejected with ``InvalidSettingError`` unless ``new_password`` is set, and then
    only its password changes. With ``new_password``, a member that is not registered is
    rejected too, because its id may be a typo. The file is written before the database, so a
    failed write leaves the member unregistered and the command can simply run again.
    """
    check_account_ids(cluster, member)
    registered = storage.is_registered(cluster, member)
    if registered and not new_password:
        raise InvalidSettingError("member_already_registered", cluster=cluster, member=member)
    if new_password and not registered:
        raise InvalidSettingError("member_not_registered", cluster=cluster, member=member)

    cut_off = tuple(other for other in storage.seen_unregistered(cluster) if other != member)
    password = new_broker_password()
    change = None if password_file is None else set_password(password_file, member, password)
    newly_registered = False if registered else storage.register_member(cluster, member, now)
    return MemberAccount(
        cluster, member, password, newly_registered, change, cut_off if newly_registered else ()
    )


def agent_broker_settings(account: MemberAccount) -> str:
    """Return the agent config lines that connect ``account`` to the broker, as YAML.

    Ids are quoted, because an id such as ``0123`` or ``true`` would otherwise not be text.
    """
    return (
        f'cluster: "{account.cluster}"\n'
        f'member: "{account.member}"\n'
        "broker:\n"
        "  url: mqtts://BROKER_HOST:8883\n"
        f'  username: "{account.member}"\n'
        f'  password: "{account.password}"\n'
        "  tls:\n"
        f"    {MESSAGES('member_snippet_ca_file')}\n"
        "    ca_file: ca.crt\n"
    )


def new_broker_password() -> str:
    """Return a random password of 32 URL-safe characters (24 random bytes)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def mosquitto_password_line(user: str, password: str, *, salt: bytes | None = None) -> str:
    """Return the password file line of ``user`` in Mosquitto's ``$7$`` format, without newline.

    ``salt`` is for tests that need a fixed line; by default 12 random bytes are used.
    """
    if not user or ":" in user or any(character in user for character in "\r\n"):
        raise ValueError(
            f"invalid Mosquitto user name {user!r}: use a non-empty name without ':' or newlines"
        )
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    key = _derive_key(password, salt, PBKDF2_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode("ascii")
    encoded_key = base64.b64encode(key).decode("ascii")
    return f"{user}:{_HASH_PREFIX}{PBKDF2_ITERATIONS}${encoded_salt}${encoded_key}"


def check_mosquitto_password(line: str, password: str) -> bool:
    """Return whether ``password`` matches the ``$7$`` hash of the password file ``line``.

    Raises ``ValueError`` for a line in another format, such as a plain-text password or the
    ``$6$`` salted SHA-512 that Mosquitto 1.6 and earlier wrote.
    """
    _, separator, hashed = line.rstrip("\r\n").partition(":")
    parts = hashed.split("$")
    # "$7$101$salt$key".split("$") == ["", "7", "101", "salt", "key"]
    if not separator or len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        raise ValueError(f"not a Mosquitto $7$ password line: {_user_part(line)!r}:...")
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error) as error:
        raise ValueError(
            f"invalid $7$ hash in the line of {_user_part(line)!r}: {error}"
        ) from error
    actual = _derive_key(password, salt, iterations, len(expected))
    return hmac.compare_digest(actual, expected)


def check_account_ids(cluster: str, member: str) -> None:
    """Raise ``InvalidSettingError`` unless both ids are valid and ``member`` is not reserved."""
    try:
        check_identifier(cluster, "cluster")
    except TopicError as error:
        raise InvalidSettingError("cluster_invalid", value=cluster) from error
    check_member_user(member)


def check_member_user(member: str) -> None:
    """Raise ``InvalidSettingError`` unless ``member`` is a member id usable as a user name."""
    try:
        check_identifier(member, "member")
    except TopicError as error:
        raise InvalidSettingError("member_invalid", value=member) from error
    if member == AGGREGATOR_USER:
        raise InvalidSettingError("member_reserved", value=member)


def set_password(path: Path, member: str, password: str) -> PasswordFileChange:
    """Write the line of ``member`` with ``password`` into the password file at ``path``.

    Creates the file (mode 0600) when missing. An existing line of the same user is replaced
    in place, and further lines of that user are removed, so no old password stays valid. All
    other lines are kept byte for byte. The new content replaces the file in one rename, so the
    broker never reads half of it, and a symbolic link is followed to the file it names.
    Returns what changed in the file. Raises ``InvalidSettingError`` for an invalid
    member id and ``MosquittoPasswordFileError`` when the file cannot be read or written.
    """
    check_member_user(member)
    target = path.resolve()
    new_line = mosquitto_password_line(member, password).encode("ascii")

    with _folder_lock(target.parent, path):
        old_content = _read_file(target, path)
        new_content, replaced = _replace_user_line(old_content, member.encode("ascii"), new_line)
        _write_file(target, path, new_content)

    if old_content is None:
        return PasswordFileChange.CREATED
    return PasswordFileChange.REPLACED if replaced else PasswordFileChange.ADDED


def _derive_key(password: str, salt: bytes, iterations: int, length: int = KEY_BYTES) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, length)


def _user_part(line: str) -> str:
    return line.partition(":")[0]


def _replace_user_line(content: bytes | None, user: bytes, new_line: bytes) -> tuple[bytes, bool]:
    if not content:
        return new_line + b"\n", False

    lines = content.splitlines(keepends=True)
    output: list[bytes] = []
    replaced = False
    for line in lines:
        if not _is_line_of(line, user):
            output.append(line)
        elif not replaced:
            ending = line[len(line.rstrip(b"\r\n")) :] or b"\n"
            output.append(new_line + ending)
            replaced = True
    if not replaced:
        if not output[-1].endswith(b"\n"):
            output[-1] += b"\n"
        output.append(new_line + b"\n")
    return b"".join(output), replaced


def _is_line_of(line: bytes, user: bytes) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith(b"#"):
        return False
    return stripped.partition(b":")[0] == user


def _read_file(target: Path, given_path: Path) -> bytes | None:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise MosquittoPasswordFileError(
            "mosquitto_passwords_unreadable", path=str(given_path), detail=_reason(error)
        ) from error


def _write_file(target: Path, given_path: Path, content: bytes) -> None:
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise MosquittoPasswordFileError(
            "mosquitto_passwords_unreadable", path=str(given_path), detail=_reason(error)
        ) from error

    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            _copy_access(temporary, existing)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise MosquittoPasswordFileError(
            "mosquitto_passwords_unwritable", path=str(given_path), detail=_reason(error)
        ) from error


def _copy_access(temporary: str, existing: os.stat_result | None) -> None:
    """Give the new file the old one's mode, and its owner when running as root."""
    if existing is None:
        os.chmod(temporary, NEW_FILE_MODE)
        return
    os.chmod(temporary, existing.st_mode & 0o7777)
    # The broker may run as another user (often "mosquitto") that must still read the file.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.chown(temporary, existing.st_uid, existing.st_gid)


@contextlib.contextmanager
def _folder_lock(folder: Path, given_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``, so two add-member runs cannot lose a line.

    NOTE: the lock is advisory and only kooperant takes it; ``mosquitto_passwd`` run at the same
    time can still lose one of the two changes. Windows has no ``flock`` and takes no lock.
    """
    if sys.platform == "win32":
        yield
        return

    import fcntl

    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise MosquittoPasswordFileError(
            "mosquitto_passwords_unwritable", path=str(given_path), detail=_reason(error)
        ) from error
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
