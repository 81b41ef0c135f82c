"""Exceptions of the aggregator server.

Each error carries the id of its user-facing message in ``server.messages.MESSAGES`` and the
fields for it, so the CLI can show it in Polish or English. ``str(error)`` is the English text.

    ServerError                  root of every error raised by ``server``
    ├── InvalidSettingError      a setting (database URL, broker URL, cluster id) is invalid:
    │   │                        the operator must fix it
    │   ├── TokensFileError      the API tokens file cannot be read or has invalid entries; the
    │   │                        message lists each problem with the file and line
    │   ├── MosquittoPasswordFileError
    │   │                        the broker's password file cannot be read or written
    │   └── AccountError         a dashboard account cannot be created or changed: invalid or
    │       │                    taken user name, unknown role or member, password too weak
    │       └── ProfileError     one or more member profile fields are invalid; the message
    │                            has one line per problem
    ├── DatabaseUnavailableError the database cannot be opened or reached: fix the server or
    │                            the URL, then start again
    ├── SchemaOutdatedError      the database schema is older than this version: run
    │                            ``kooperant server migrate``
    ├── StorageError             a read or write failed while running; the caller may retry
    ├── RequestError             a capacity request cannot be created, read or withdrawn; the
    │   │                        message id is the API error code
    │   ├── RequestNotFoundError the offer or the request does not exist or is hidden from the
    │   │                        caller (both look the same)
    │   ├── RequestForbiddenError
    │   │                        the caller may not do this: no member, or not the requester
    │   ├── RequestConflictError the request is final already and cannot change any more, or
    │   │                        the offer's owner does not take requests for it
    │   └── InvalidRequestError  the slot or amount does not fit the offer
    ├── BrokerPortInUseError     the embedded broker cannot listen because the port is taken
    └── MailSendError            an e-mail could not be sent through the SMTP server; the mail
                                 task tries again later
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kooperant.i18n import Language, current_language, format_decimal
from server.messages import MESSAGES


class ServerError(Exception):
    """Root of the server's exceptions; the text comes from the message catalogue.

    A ``float`` field is shown in the message's language, e.g. ``1,5`` in Polish.
    """

    def __init__(self, message_id: str, **fields: object) -> None:
        self.message_id = message_id
        self.fields = fields
        super().__init__(self._format("en"))

    def localized(self, language: Language | None = None) -> str:
        """Return the message in ``language`` (default: the current user language)."""
        return self._format(language)

    def _format(self, language: Language | None) -> str:
        shown_language = language or current_language()
        localized_fields = {
            name: format_decimal(value, shown_language) if isinstance(value, float) else value
            for name, value in self.fields.items()
        }
        return MESSAGES(self.message_id, shown_language, **localized_fields)


class InvalidSettingError(ServerError):
    """Raised for a setting the operator must correct before the server can start."""


@dataclass(frozen=True, slots=True)
class TokensProblem:
    """One problem in the tokens file: its line (1-based), key and message id with fields."""

    line: int | None
    key: str
    message_id: str
    fields: Mapping[str, object] = field(default_factory=dict)

    def format(self, path: Path, language: Language | None = None) -> str:
        where = str(path) if self.line is None else f"{path}:{self.line}"
        reason = MESSAGES(self.message_id, language, **self.fields)
        return f"{where}: {self.key}: {reason}" if self.key else f"{where}: {reason}"


class TokensFileError(InvalidSettingError):
    """Raised when the tokens file is unreadable or invalid; one line per problem."""

    def __init__(self, path: Path, problems: Sequence[TokensProblem]) -> None:
        if not problems:
            raise ValueError("TokensFileError needs at least one problem")
        self.path = path
        self.problems = tuple(problems)
        super().__init__("tokens_file_invalid", path=str(path))
        self.args = (self.localized("en"),)

    def localized(self, language: Language | None = None) -> str:
        lines = [MESSAGES("tokens_file_invalid", language, path=str(self.path))]
        lines += self.problem_lines(language)
        return "\n".join(lines)

    def problem_lines(self, language: Language | None = None) -> list[str]:
        """Return one line per problem, each starting with the file and line."""
        return [problem.format(self.path, language) for problem in self.problems]


class DatabaseUnavailableError(ServerError):
    """Raised when the database cannot be opened or reached."""


class SchemaOutdatedError(ServerError):
    """Raised when the database schema is not at the revision this version needs."""


class StorageError(ServerError):
    """Raised when a database read or write fails after the server started."""


class BrokerPortInUseError(ServerError):
    """Raised when the embedded broker's port is already taken."""


class MosquittoPasswordFileError(InvalidSettingError):
    """Raised when ``add-member`` cannot read or replace the Mosquitto password file."""


class AccountError(InvalidSettingError):
    """Raised when a dashboard account or member profile cannot be created or changed."""


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid value: its message id and fields, and the message id of the field's label.

    The label is translated with the message, so the field is named in the user's language.
    """

    message_id: str
    fields: Mapping[str, object] = field(default_factory=dict)
    label_id: str | None = None

    def format(self, language: Language | None = None) -> str:
        label = MESSAGES(self.label_id, language) if self.label_id is not None else ""
        return MESSAGES(self.message_id, language, field=label, **self.fields)


class ProfileError(AccountError):
    """Raised with every invalid member id or profile field found, not only the first."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        if not problems:
            raise ValueError("ProfileError needs at least one problem")
        self.problems = tuple(problems)
        first = self.problems[0]
        self.message_id = first.message_id
        self.fields = dict(first.fields)
        # ServerError.__init__ is skipped because it formats one message without the field label.
        Exception.__init__(self, self.localized("en"))

    def localized(self, language: Language | None = None) -> str:
        return "\n".join(problem.format(language) for problem in self.problems)


class RequestError(ServerError):
    """Raised when a capacity request cannot be created, read or withdrawn.

    ``message_id`` doubles as the stable error code of the API.
    """


class RequestNotFoundError(RequestError):
    """Raised for a missing offer or request, and for one the caller may not see."""


class RequestForbiddenError(RequestError):
    """Raised when the caller has no member to request as, or is not the request's requester."""


class RequestConflictError(RequestError):
    """Raised when a request in a final state would change, or the offer takes no requests."""


class InvalidRequestError(RequestError):
    """Raised when a request's slot or amount does not fit the requested offer."""


class MailSendError(ServerError):
    """Raised when the SMTP server cannot be reached or does not take an e-mail.

    ``connection_failed`` is true when the failure came before the e-mail itself was sent: the
    connection, TLS or the login failed, or the server hung up. Further e-mails would then fail
    the same way, unlike when the server rejects one sender, recipient or message.
    """

    def __init__(self, server: str, detail: str, *, connection_failed: bool) -> None:
        super().__init__("mail_send_failed", server=server, detail=detail)
        self.connection_failed = connection_failed
