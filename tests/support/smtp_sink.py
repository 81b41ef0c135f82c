"""An SMTP server for tests: aiosmtpd on 127.0.0.1 that keeps every e-mail it receives.

``SmtpSink(port)`` listens in a thread of its own between ``start()`` and ``stop()`` (or as a
context manager). ``credentials`` turns on AUTH and rejects other logins, ``tls_context`` offers
STARTTLS and requires it, and ``implicit_tls=True`` wraps the whole connection in TLS instead, as
an ``smtps://`` server does.
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.certificates import CertificateFiles


@dataclass(frozen=True)
class ReceivedMail:
    """One e-mail as the sink received it: the SMTP envelope and the parsed message."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None, "the e-mail has no text/plain part"
        return cast(str, body.get_content())


class _Collector:
    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        mail = ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), message, raw)
        with self.lock:
            self.mails.append(mail)
        return "250 OK"


class SmtpSink:
    """An aiosmtpd server on ``127.0.0.1:port`` that stores what it receives in ``mails``."""

    def __init__(
        self,
        port: int,
        *,
        credentials: tuple[str, str] | None = None,
        certificate: CertificateFiles | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.port = port
        self._collector = _Collector()
        self._credentials = credentials
        options: dict[str, Any] = {}
        if credentials is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
            # aiosmtpd 1.4.6 does not count an implicit TLS connection as TLS for AUTH, so
            # only the STARTTLS server requires TLS before a login.
            options["auth_require_tls"] = certificate is not None and not implicit_tls
        tls_context = None
        if certificate is not None:
            tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_context.load_cert_chain(certificate.cert_file, certificate.key_file)
        if tls_context is not None and implicit_tls:
            options.update(ssl_context=tls_context, server_hostname="localhost")
        elif tls_context is not None:
            options.update(tls_context=tls_context, require_starttls=True)
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=port, **options)
        self._implicit_tls = implicit_tls

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._collector.lock:
            return list(self._collector.mails)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Return the mails once there are ``count``, or fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails = self.mails
            if len(mails) >= count:
                return mails
            time.sleep(0.02)
        raise AssertionError(f"expected {count} e-mails within {timeout} s, got {len(self.mails)}")

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self._credentials is None:
            return AuthResult(success=False, handled=False)
        given = (data.login.decode("utf-8"), data.password.decode("utf-8"))
        # handled=False lets aiosmtpd send the 235 or 535 reply itself.
        return AuthResult(success=given == self._credentials, handled=False)
