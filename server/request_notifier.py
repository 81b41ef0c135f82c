"""The mail task of ``kooperant server run``: an e-mail for each new state of a request.

Every few seconds the task reads the ``request_log`` rows whose e-mail waits
(``server/storage/notifications.py``), picks the recipients and content (``server/request_mail.py``)
and sends each e-mail in a worker thread (``server/smtp_client.py``). It marks each row in a
transaction of its own right after the send, so a crash in between sends at most one e-mail again.

- A row without a recipient address, or of the state ``delivered``, is ``skipped``.
- A row older than ``OLD_MAIL_AGE`` that was never tried is ``skipped`` without a send, so that
  turning SMTP on, or an aggregator that was down for long, does not mail a backlog. The rows
  skipped in one pass are counted in one log line.
- A failed send is tried again after a bounded exponential backoff. After ``MAX_MAIL_ATTEMPTS``
  the row is ``failed`` and logged at ERROR with the request id and the SMTP error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from kooperant.backoff import BackoffPolicy
from server.errors import MailSendError, StorageError
from server.mail_settings import SmtpSettings
from server.request_mail import compose_mail, recipients
from server.smtp_client import send_mail
from server.storage import Storage
from server.storage.notifications import MailState, PendingMail

logger = logging.getLogger(__name__)

MAX_MAIL_ATTEMPTS = 5
OLD_MAIL_AGE = timedelta(hours=24)
# The waits between the five attempts of one e-mail are 30 s, 1, 2 and 4 min, each up to 20%
# longer, so the attempts span 7.5 to 9 min: long enough to outlast a restart of the SMTP server.
DEFAULT_MAIL_RETRY = BackoffPolicy(minimum=30.0, maximum=600.0)
DEFAULT_MAIL_POLL_SECONDS = 5.0
# Rows read per pass; the next pass reads the rest.
MAIL_BATCH_SIZE = 50

MailSender = Callable[[SmtpSettings, EmailMessage], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RequestNotifier:
    """Sends the waiting e-mails of ``storage`` through the SMTP server of ``smtp``.

    ``public_url`` adds a link to each request's page. ``clock`` decides which rows are old and
    when a failed e-mail is due again, so tests move time on without sleeping. ``send`` is the
    blocking sender, run in a worker thread.
    """

    def __init__(
        self,
        storage: Storage,
        smtp: SmtpSettings,
        *,
        public_url: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        retry: BackoffPolicy = DEFAULT_MAIL_RETRY,
        random_value: Callable[[], float] = random.random,
        send: MailSender = send_mail,
    ) -> None:
        self._storage = storage
        self._smtp = smtp
        self._public_url = public_url
        self._clock = clock
        self._retry = retry
        self._random_value = random_value
        self._send = send
        # When each failed row is due again. Kept in memory only: after a restart every row is
        # due at once, and its stored attempts still end it as failed after the last one.
        self._retry_at: dict[int, datetime] = {}
        self._failing = False
        self.sent_mails = 0
        """E-mails sent in this run."""
        self.failed_attempts = 0
        """Sends that failed in this run, each retried later or given up."""
        self.abandoned_mails = 0
        """E-mails given up in this run after ``MAX_MAIL_ATTEMPTS`` failed sends."""

    async def run(
        self, stop: asyncio.Event, poll_seconds: float = DEFAULT_MAIL_POLL_SECONDS
    ) -> None:
        """Send waiting e-mails every ``poll_seconds`` until ``stop`` is set."""
        # NOTE: a send in progress cannot be cancelled, because smtplib blocks its worker
        # thread. Stopping the server waits for it, at most SmtpSettings.timeout_seconds per
        # SMTP command of a server that stopped answering.
        address = self._smtp.address
        logger.info("Sending e-mails about requests through %s:%d", address.host, address.port)
        while not stop.is_set():
            try:
                await self.send_waiting(stop)
            except StorageError as error:
                logger.error("Could not read or mark the e-mails about requests: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)

    async def send_waiting(self, stop: asyncio.Event | None = None) -> int:
        """Send the e-mails due now, one pass; return how many were sent.

        The pass ends early when ``stop`` is set, or when the SMTP server cannot be reached,
        because the other e-mails would fail the same way.
        """
        now = self._clock()
        skipped = await asyncio.to_thread(self._storage.skip_old_mails, now - OLD_MAIL_AGE)
        if skipped:
            logger.warning(
                "Skipped %d e-mails about requests logged more than %d hours ago",
                skipped,
                OLD_MAIL_AGE // timedelta(hours=1),
            )
        waiting_later = [log_id for log_id, due in self._retry_at.items() if due > now]
        mails = await asyncio.to_thread(self._storage.pending_mails, MAIL_BATCH_SIZE, waiting_later)

        sent = 0
        for mail in mails:
            if stop is not None and stop.is_set():
                break
            try:
                sent += await self._deliver(mail, now)
            except MailSendError as error:
                await self._count_failure(mail, error, now)
                if error.connection_failed:
                    break
        return sent

    async def _deliver(self, mail: PendingMail, now: datetime) -> int:
        to = recipients(mail)
        if not to:
            await asyncio.to_thread(
                self._storage.finish_mail, mail.log_id, MailState.SKIPPED, mail.attempts
            )
            logger.debug(
                "No e-mail about request %s (%s): no recipient",
                mail.request.request_id,
                mail.state,
            )
            return 0

        message = compose_mail(mail, to, self._smtp.sender, self._public_url, now)
        await asyncio.to_thread(self._send, self._smtp, message)
        await asyncio.to_thread(
            self._storage.finish_mail, mail.log_id, MailState.SENT, mail.attempts + 1
        )
        self._retry_at.pop(mail.log_id, None)
        self.sent_mails += 1
        if self._failing:
            self._failing = False
            logger.info("E-mails about requests are sent again")
        logger.info(
            "Sent the e-mail about request %s (%s) to %d recipients",
            mail.request.request_id,
            mail.state,
            len(to),
        )
        return 1

    async def _count_failure(self, mail: PendingMail, error: MailSendError, now: datetime) -> None:
        attempts = mail.attempts + 1
        request_id = mail.request.request_id
        self.failed_attempts += 1
        if attempts >= MAX_MAIL_ATTEMPTS:
            self.abandoned_mails += 1
            await asyncio.to_thread(
                self._storage.finish_mail, mail.log_id, MailState.FAILED, attempts
            )
            self._retry_at.pop(mail.log_id, None)
            logger.error(
                "Gave up the e-mail about request %s (%s) after %d attempts: %s",
                request_id,
                mail.state,
                attempts,
                error,
            )
            return

        await asyncio.to_thread(self._storage.count_failed_mail, mail.log_id, attempts)
        delay = self._retry.delay(attempts - 1, self._random_value())
        self._retry_at[mail.log_id] = now + timedelta(seconds=delay)
        # The first failure is a warning; the ones that follow until a send succeeds are
        # counted in mail_attempts and logged at DEBUG only.
        level = logging.DEBUG if self._failing else logging.WARNING
        self._failing = True
        logger.log(
            level,
            "Could not send the e-mail about request %s (%s), attempt %d of %d; "
            "trying again in %.0f s: %s",
            request_id,
            mail.state,
            attempts,
            MAX_MAIL_ATTEMPTS,
            delay,
            error,
        )
