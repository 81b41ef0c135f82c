"""Demoting asyncua's log records about a connection that is already gone to DEBUG.

When a server stops, asyncua 2.1 logs the same loss several times. Each failed publish request and
the session close in ``Client.disconnect`` give an ERROR with a traceback. Closing a session or
channel whose connection is closed and each ``BadSession...`` fault give a WARNING, and an Error
message from the server, which closes the channel, gives a WARNING, a CRITICAL and an ERROR.
The adapter reports the loss itself in one WARNING line, so these records become DEBUG records,
shown only where the asyncua logger is enabled for DEBUG (``kooperant --verbose``). The same
goes for the WARNING of each rejected certificate or identity, which asyncua repeats at every
reconnect attempt while the adapter logs the cause once with what to do.

Records are matched by logger name, message format string and exception type. Other records of
the same loggers, such as a publish loop that fails on a decoding error, keep their level.
"""

from __future__ import annotations

import logging

from asyncua.ua.uaerrors import UaError

# Service results that mean the session or channel is gone, as asyncua 2.1 names them.
_GONE_SERVICE_RESULTS = frozenset(
    {
        "BadSessionClosed",
        "BadSessionIdInvalid",
        "BadSecureChannelClosed",
        "BadConnectionClosed",
        # Rejections the adapter reports itself as configuration errors.
        "BadCertificateUntrusted",
        "BadSecurityChecksFailed",
        "BadUserAccessDenied",
        "BadIdentityTokenInvalid",
        "BadIdentityTokenRejected",
    }
)

# Logger name and the start of the message format string of each record about a gone connection.
_GONE_MESSAGES = {
    "asyncua.client.client": (
        "close_session raised during disconnect",
        "close_secure_channel raised during disconnect",
    ),
    "asyncua.client.ua_session.UaSession": (
        "Publish iteration crashed",
        "close_session was called but connection is closed",
        "close_session but connection wasn't established",
    ),
    "asyncua.client.ua_client.UaClient": (
        "close_secure_channel was called but connection is closed",
    ),
    # An Error message from the server closes the channel, which the adapter reports as a loss.
    # Seen when a half-open link heals and the server finds a gap in the sequence numbers.
    "asyncua.uaprotocol": ("Received an error",),
    "asyncua.client.ua_client.UASocketProtocol": (
        "Received an error",
        "Got error status from server",
    ),
}
_SERVICE_FAULT_LOGGER = "asyncua.client.ua_client.UASocketProtocol"
_SERVICE_FAULT_MESSAGE = "ServiceFault ("


class GoneConnectionFilter(logging.Filter):
    """A filter for asyncua's loggers that demotes records about a gone connection to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._about_gone_connection(record):
            return True
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def _about_gone_connection(record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if record.name == _SERVICE_FAULT_LOGGER and message.startswith(_SERVICE_FAULT_MESSAGE):
            args = record.args if isinstance(record.args, tuple) else ()
            return bool(args and args[0] in _GONE_SERVICE_RESULTS)
        if not message.startswith(_GONE_MESSAGES.get(record.name, ())):
            return False
        if record.exc_info is None:
            return True
        error = record.exc_info[1]
        return isinstance(error, OSError | TimeoutError | UaError)


_FILTER = GoneConnectionFilter()


def demote_gone_connection_records() -> None:
    """Add the filter to asyncua's client loggers, once however often it is called."""
    for name in {*_GONE_MESSAGES, _SERVICE_FAULT_LOGGER}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
