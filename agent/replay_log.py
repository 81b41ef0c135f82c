"""Log lines about sending the backlog that the outbox gathered while the broker was unreachable.

The forwarder starts a ``BacklogReplay`` on each connection that finds messages queued. A large
backlog (more than ``LARGE_BACKLOG_MESSAGES`` messages, or one still being sent after
``LARGE_BACKLOG_SECONDS``) is logged at INFO when sending starts, every ``PROGRESS_SECONDS``
while it goes on, and when the queue is empty. A small backlog gets one INFO line once it is
sent. Messages queued while the backlog is sent count towards it, and so do messages the broker
rejected, because both leave the queue.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from agent.outbox import OutboxState

logger = logging.getLogger(__name__)

LARGE_BACKLOG_MESSAGES = 1000
LARGE_BACKLOG_SECONDS = 5.0
PROGRESS_SECONDS = 10.0


class BacklogReplay:
    """The sending of one backlog, from the state of the queue when the connection began."""

    def __init__(self, backlog: OutboxState, now: datetime) -> None:
        self.backlog = backlog
        self.started_at = now
        self.sent = 0
        self.finished = False
        self._announced = False
        self._last_report = now
        if backlog.queued_messages > LARGE_BACKLOG_MESSAGES:
            self._announce(now)

    def message_sent(self, now: datetime) -> bool:
        """Count one message that left the queue and return whether a progress line is due.

        The caller then reads the number of queued messages and calls ``log_progress``, so the
        outbox is counted only every ``PROGRESS_SECONDS``.
        """
        self.sent += 1
        if not self._announced and self._seconds_since_start(now) >= LARGE_BACKLOG_SECONDS:
            self._announce(now)
        return self._announced and (now - self._last_report).total_seconds() >= PROGRESS_SECONDS

    def log_progress(self, now: datetime, queued_messages: int) -> None:
        """Log how many messages were sent of those to send, and the rate so far."""
        self._last_report = now
        seconds = self._seconds_since_start(now)
        rate = self.sent / seconds if seconds > 0 else 0.0
        logger.info(
            "Sending the outbox backlog: %d of %d messages sent, %.0f messages/s",
            self.sent,
            self.sent + queued_messages,
            rate,
        )

    def finish(self, now: datetime) -> None:
        """Log that the queue is empty: one line for any backlog, with its count and duration."""
        if self.finished:
            return
        self.finished = True
        seconds = self._seconds_since_start(now)
        if self._announced:
            logger.info(
                "Sent the outbox backlog: %d messages in %.1f s (%.0f messages/s)",
                self.sent,
                seconds,
                self.sent / seconds if seconds > 0 else 0.0,
            )
        else:
            logger.info(
                "Sent %d messages queued while the broker was unreachable, in %.1f s",
                self.sent,
                seconds,
            )

    def interrupt(self, now: datetime, queued_messages: int | None) -> None:
        """Log that sending a large backlog stopped before the queue was empty.

        ``queued_messages`` is None when the queue could not be read. A small backlog is not
        logged, because the lost connection is logged already.
        """
        if self.finished or not self._announced:
            return
        self.finished = True
        left = "an unknown number" if queued_messages is None else str(queued_messages)
        logger.info(
            "Sending the outbox backlog stopped after %d messages in %.1f s; %s stay queued "
            "for the next connection",
            self.sent,
            self._seconds_since_start(now),
            left,
        )

    def _announce(self, now: datetime) -> None:
        self._announced = True
        self._last_report = now
        backlog = self.backlog
        oldest_age = timedelta(0)
        if backlog.oldest_queued_at is not None:
            oldest_age = max(timedelta(0), self.started_at - backlog.oldest_queued_at)
        late = ""
        if now != self.started_at:
            late = f"; started {self._seconds_since_start(now):.0f} s ago"
        logger.info(
            "Sending the outbox backlog of %d messages (%.1f MB), the oldest queued %s ago%s",
            backlog.queued_messages,
            backlog.queued_bytes / 1e6,
            timedelta(seconds=round(oldest_age.total_seconds())),
            late,
        )

    def _seconds_since_start(self, now: datetime) -> float:
        return (now - self.started_at).total_seconds()
