"""Sending one e-mail with the standard library's ``smtplib``, blocking, in a worker thread.

Each e-mail gets its own connection: requests change state a few times a day, so keeping a
session open would only add idle time-outs to handle. Every failure becomes a ``MailSendError``
whose text carries the SMTP server's reply but never the password.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from server.errors import MailSendError
from server.mail_settings import SmtpSettings

logger = logging.getLogger(__name__)


def send_mail(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send ``message`` to its To addresses through the server of ``settings``.

    Raises ``MailSendError`` when the server cannot be reached, TLS or the login fails, or the
    server rejects the sender, every recipient or the message.
    """
    address = settings.address
    server_name = f"{address.host}:{address.port}"
    try:
        client = _connect(settings)
    except (OSError, smtplib.SMTPException) as error:
        raise _send_error(settings, server_name, error, connection_failed=True) from error

    with client:
        try:
            _start_session(settings, client)
        except (OSError, smtplib.SMTPException) as error:
            raise _send_error(settings, server_name, error, connection_failed=True) from error
        try:
            refused = client.send_message(message)
        except smtplib.SMTPServerDisconnected as error:
            raise _send_error(settings, server_name, error, connection_failed=True) from error
        except (OSError, smtplib.SMTPException) as error:
            raise _send_error(settings, server_name, error, connection_failed=False) from error
    if refused:
        logger.warning(
            "SMTP server %s rejected %d of the recipients: %s", server_name, len(refused), refused
        )


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    address = settings.address
    if address.implicit_tls:
        return smtplib.SMTP_SSL(
            address.host,
            address.port,
            timeout=settings.timeout_seconds,
            context=_tls_context(settings),
        )
    return smtplib.SMTP(address.host, address.port, timeout=settings.timeout_seconds)


def _start_session(settings: SmtpSettings, client: smtplib.SMTP) -> None:
    # starttls() raises SMTPNotSupportedError when the server does not offer STARTTLS, so the
    # password is never sent unencrypted to a server that was meant to use TLS.
    if settings.starttls:
        client.starttls(context=_tls_context(settings))
    if settings.username is not None:
        client.login(settings.username, settings.password or "")


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    ca_file = str(settings.ca_file) if settings.ca_file is not None else None
    return ssl.create_default_context(cafile=ca_file)


def _send_error(
    settings: SmtpSettings, server: str, error: Exception, *, connection_failed: bool
) -> MailSendError:
    detail = f"{type(error).__name__}: {error}"
    # smtplib does not put the password into its errors, but a server's reply might echo it.
    if settings.password:
        detail = detail.replace(settings.password, "***")
    return MailSendError(server, detail, connection_failed=connection_failed)
