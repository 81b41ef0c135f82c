"""``MqttSession``: one MQTT connection over paho-mqtt, used from asyncio.

paho runs its network loop in its own thread (``loop_start``). Its callbacks hand their results to
the event loop with ``call_soon_threadsafe``, where they resolve the futures that ``publish`` and
``subscribe`` wait for. Received messages go to an inbox (a deque) that ``messages`` and
``receive_batch`` read. The network thread appends to it and schedules one wake-up of the event
loop only while none is pending, so a burst of messages costs one ``call_soon_threadsafe``
instead of one each. The session never reconnects: when the connection drops, waiting calls
raise ``ConnectionLost`` and the caller opens a new session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from kooperant.mqtt.connecting import make_client, open_connection
from kooperant.mqtt.errors import (
    ConnectFailed,
    ConnectionLost,
    MqttError,
    NotAuthorized,
    ProtocolNotAccepted,
    PublishRejected,
    SubscribeRejected,
)
from kooperant.mqtt.options import ConnectOptions

_LOG = logging.getLogger(__name__)

# CONNACK reason codes that need the operator, not a retry: 0x86 bad user name or password,
# 0x87 not authorized. paho reports the MQTT 3.1.1 return codes 4 and 5 as these two.
_NOT_AUTHORIZED_CODES = frozenset({0x86, 0x87})
# MQTT 5 "Unsupported Protocol Version"; paho reports the 3.1.1 return code 1 as this code too.
_UNSUPPORTED_PROTOCOL_VERSION = 0x84

DISCONNECT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message delivered by the broker; ``mid`` identifies it for ``MqttSession.ack``."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class _EndOfMessages:
    """Queue marker put after a clean ``disconnect``: ``messages`` stops."""


class MqttSession:
    """One connection to an MQTT broker; use as ``async with MqttSession(options) as session``.

    Entering connects and waits for the CONNACK, and raises ``ConnectFailed``, ``NotAuthorized``
    or ``TlsSettingsError``. Leaving the block normally disconnects cleanly, so the broker drops
    the will. Leaving it with an exception drops the connection like ``abort``, so the broker
    publishes the will. ``session_present`` is the CONNACK flag: True when the broker kept the
    session (subscriptions and queued messages) from an earlier connection with this client id.
    """

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        self.session_present = False
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[bool] | None = None
        self._closed = asyncio.Event()
        self._closing = False
        self._lost: ConnectionLost | None = None
        self._publishes: dict[int, tuple[str, asyncio.Future[None]]] = {}
        self._subscribes: dict[int, tuple[list[str], asyncio.Future[None]]] = {}
        self._inbox = _Inbox()

    async def __aenter__(self) -> MqttSession:
        await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.disconnect()
        else:
            self.abort()
            await self._stop_network_thread()

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish and return once the broker acknowledged it (QoS 0: once it is written).

        Raises ``PublishRejected`` when the PUBACK carries a reason code of 0x80 or above (MQTT 5
        only, because an MQTT 3.1.1 PUBACK has no reason code), and ``ConnectionLost`` when the
        connection drops before the acknowledgement arrives.
        """
        client = self._open_client()
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise self._lost_error("publishing")
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"publishing to topic {topic!r} failed: {mqtt.error_string(info.rc)}")

        done = self._running_loop().create_future()
        self._publishes[info.mid] = (topic, done)
        try:
            await done
        finally:
            self._publishes.pop(info.mid, None)

    async def subscribe(self, topic_filters: Sequence[str], qos: int = 1) -> None:
        """Subscribe to ``topic_filters`` and return once the broker's SUBACK granted all of them.

        Raises ``SubscribeRejected`` naming each filter the broker rejected and its reason code.
        """
        if not topic_filters:
            raise ValueError("subscribe needs at least one topic filter")
        client = self._open_client()
        filters = list(topic_filters)
        if self.options.protocol == "5":
            result, mid = client.subscribe([(item, SubscribeOptions(qos=qos)) for item in filters])
        else:
            result, mid = client.subscribe([(item, qos) for item in filters])
        if result == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise self._lost_error("subscribing")
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError(f"subscribing to {filters} failed: {mqtt.error_string(result)}")

        done = self._running_loop().create_future()
        self._subscribes[mid] = (filters, done)
        try:
            await done
        finally:
            self._subscribes.pop(mid, None)

    async def messages(self) -> AsyncIterator[ReceivedMessage]:
        """Yield the received messages in order of arrival.

        Messages that arrived before the connection dropped are yielded first, then
        ``ConnectionLost`` is raised. After ``disconnect`` the iteration ends.
        """
        while True:
            batch = await self.receive_batch(1)
            if not batch:
                return
            yield batch[0]

    async def receive_batch(self, limit: int) -> list[ReceivedMessage]:
        """Return the received messages waiting now, at most ``limit``, in order of arrival.

        Waits only while none is waiting, so a single message is returned as soon as it arrives.
        Messages that arrived before the connection dropped are returned first, then
        ``ConnectionLost`` is raised. After ``disconnect`` an empty list is returned.
        """
        if limit < 1:
            raise ValueError(f"receive_batch needs a limit of at least 1, got {limit}")
        return await self._inbox.take(limit)

    def ack(self, message: ReceivedMessage) -> None:
        """Send the acknowledgement of ``message`` now (only with ``manual_ack``).

        Without ``manual_ack`` paho acknowledged the message on arrival, so this does nothing. On
        a dropped connection it does nothing either: the broker delivers the message again to the
        next connection of a kept session.
        """
        if not self.options.manual_ack or message.qos == 0 or self._client is None:
            return
        result = self._client.ack(message.mid, message.qos)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            _LOG.debug(
                "Acknowledging message %d on %s failed: %s",
                message.mid,
                message.topic,
                mqtt.error_string(result),
            )

    async def disconnect(self) -> None:
        """Send DISCONNECT (so the broker drops the will) and stop the network thread."""
        client = self._client
        if client is None or self._closing:
            await self._stop_network_thread()
            return

        self._closing = True
        if self._lost is None:
            client.disconnect()
            try:
                async with asyncio.timeout(DISCONNECT_TIMEOUT_SECONDS):
                    await self._closed.wait()
            except TimeoutError:
                _LOG.warning(
                    "MQTT broker %s did not close the connection within %s s after DISCONNECT",
                    self.options.address,
                    DISCONNECT_TIMEOUT_SECONDS,
                )
        self._inbox.put(_EndOfMessages())
        self._inbox.wake()
        await self._stop_network_thread()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, so the broker publishes the will.

        Meant for tests and for leaving the session on an error. Waiting calls then raise
        ``ConnectionLost``.
        """
        if self._client is None:
            return
        connection = self._client.socket()
        if connection is None:
            return
        # socket.socket.shutdown and not SSLSocket.shutdown, which would discard the TLS state
        # that paho's thread is still reading with.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(connection, socket.SHUT_RDWR)  # type: ignore[arg-type]

    # --- connecting -----------------------------------------------------------------------

    async def _connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._connack = self._loop.create_future()
        client = self._make_client()
        self._client = client

        await asyncio.to_thread(open_connection, client, self.options)
        client.loop_start()
        try:
            async with asyncio.timeout(self.options.connect_timeout_seconds):
                self.session_present = await self._connack
        except TimeoutError as error:
            self.abort()
            await self._stop_network_thread()
            raise ProtocolNotAccepted(
                f"connecting to MQTT broker {self.options.address} timed out: no CONNACK within "
                f"{self.options.connect_timeout_seconds} s (a broker that does not speak MQTT "
                f"{self.options.protocol} may not answer at all)"
            ) from error
        except BaseException:
            self.abort()
            await self._stop_network_thread()
            raise
        _LOG.debug(
            "Connected to MQTT broker %s as %s (session present: %s)",
            self.options.address,
            self.options.client_id,
            self.session_present,
        )

    def _make_client(self) -> mqtt.Client:
        client = make_client(self.options)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    # --- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._dispatch(partial(self._handle_connack, flags.session_present, reason_code))

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._dispatch(partial(self._handle_disconnect, reason_code))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        self._dispatch(partial(self._handle_puback, mid, reason_code))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties,
    ) -> None:
        self._dispatch(partial(self._handle_suback, mid, reason_codes))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = ReceivedMessage(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            retain=bool(message.retain),
            mid=message.mid,
        )
        if self._inbox.put(received) and self._loop is not None:
            # A closed event loop raises RuntimeError, and then no reader is left.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._inbox.wake)

    def _dispatch(self, handler: Callable[[], None]) -> None:
        if self._loop is None:
            return
        # A closed event loop raises RuntimeError, and then nothing waits for this result.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(handler)

    # --- results (event loop) ----------------------------------------------------------------

    def _handle_connack(self, session_present: bool, reason_code: ReasonCode) -> None:
        if self._connack is None or self._connack.done():
            return
        if not reason_code.is_failure:
            self._connack.set_result(session_present)
            return

        address = self.options.address
        reason = _describe(reason_code)
        if reason_code.value in _NOT_AUTHORIZED_CODES:
            self._connack.set_exception(
                NotAuthorized(
                    f"MQTT broker {address} rejected client {self.options.client_id!r}"
                    f"{self._user_text()}: {reason}"
                )
            )
            return
        failure = ConnectFailed
        if reason_code.value == _UNSUPPORTED_PROTOCOL_VERSION:
            failure = ProtocolNotAccepted
        self._connack.set_exception(
            failure(f"MQTT broker {address} rejected the connection: {reason}")
        )

    def _user_text(self) -> str:
        username = self.options.username
        return "" if username is None else f" (user {username!r})"

    def _handle_disconnect(self, reason_code: ReasonCode) -> None:
        self._closed.set()
        reason = _describe(reason_code)
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectFailed(self._closed_before_connack()))
            return

        if self._closing:
            error = ConnectionLost(f"the session with {self.options.address} was disconnected")
        else:
            error = ConnectionLost(f"lost the connection to MQTT broker {self.options.address}")
            self._lost = error
            self._inbox.put(error)
            self._inbox.wake()
            _LOG.debug("Lost the connection to MQTT broker %s: %s", self.options.address, reason)
        for _, done in [*self._publishes.values(), *self._subscribes.values()]:
            if not done.done():
                done.set_exception(error)

    def _closed_before_connack(self) -> str:
        # paho reports a socket closed by the peer as "Unspecified error", which the broker never
        # sent, so the message leaves that out and gives the likely cause instead.
        message = f"MQTT broker {self.options.address} closed the connection before its CONNACK"
        if self.options.tls is not None:
            return (
                f"{message}. Over TLS 1.3 this is how a rejected client certificate shows "
                "(missing, expired or signed by a CA the broker does not trust). The broker's "
                "log names the reason"
            )
        return f"{message}. The broker's log names the reason"

    def _handle_puback(self, mid: int, reason_code: ReasonCode) -> None:
        entry = self._publishes.get(mid)
        if entry is None or entry[1].done():
            return
        topic, done = entry
        if reason_code.is_failure:
            done.set_exception(PublishRejected(topic, _describe(reason_code)))
        else:
            done.set_result(None)

    def _handle_suback(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        entry = self._subscribes.get(mid)
        if entry is None or entry[1].done():
            return
        filters, done = entry
        rejected = [
            f"{topic_filter!r} ({_describe(code)})"
            for topic_filter, code in zip(filters, reason_codes, strict=False)
            if code.is_failure
        ]
        if rejected:
            done.set_exception(
                SubscribeRejected(
                    f"MQTT broker {self.options.address} rejected the subscription to "
                    + ", ".join(rejected)
                )
            )
        else:
            done.set_result(None)

    # --- helpers ---------------------------------------------------------------------------

    def _open_client(self) -> mqtt.Client:
        if self._lost is not None:
            raise self._lost
        if self._client is None or self._closing:
            raise MqttError(
                f"the session with {self.options.address} is not connected: "
                "use it inside 'async with MqttSession(...)'"
            )
        return self._client

    def _lost_error(self, action: str) -> ConnectionLost:
        return ConnectionLost(
            f"{action} failed: the connection to MQTT broker {self.options.address} is down"
        )

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise MqttError("the session was never connected")
        return self._loop

    async def _stop_network_thread(self) -> None:
        client = self._client
        if client is None:
            return
        # A live socket would keep paho's loop running while messages wait for their PUBACK.
        self.abort()
        await asyncio.shield(asyncio.to_thread(client.loop_stop))


class _Inbox:
    """Received messages on their way from paho's network thread to the event loop.

    ``put`` may be called from any thread. It returns True when the caller must schedule
    ``wake`` on the event loop, which is only while ``take`` waits for a message and no wake-up is
    pending. So a reader that keeps up costs one wake-up per wait, not one per message. ``wake`` and
    ``take`` run on the event loop. A final item (an error or the end marker) stays in the inbox,
    so every later ``take`` returns it too.
    """

    def __init__(self) -> None:
        self._items: deque[ReceivedMessage | MqttError | _EndOfMessages] = deque()
        self._lock = threading.Lock()
        self._waiting = False
        self._wake_pending = False
        self._arrived = asyncio.Event()

    def put(self, item: ReceivedMessage | MqttError | _EndOfMessages) -> bool:
        # Appending before reading _waiting pairs with take setting _waiting before it looks at
        # the items, so either take finds this item or this put finds take waiting. deque.append is
        # atomic, so the lock is taken only when a wake-up may be due.
        self._items.append(item)
        if not self._waiting:
            return False
        with self._lock:
            if not self._waiting or self._wake_pending:
                return False
            self._wake_pending = True
            return True

    def wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._arrived.set()

    async def take(self, limit: int) -> list[ReceivedMessage]:
        await self._wait_for_items()
        batch: list[ReceivedMessage] = []
        items = self._items
        while items and len(batch) < limit:
            item = items[0]
            if not isinstance(item, ReceivedMessage):
                break
            batch.append(item)
            items.popleft()
        if batch:
            return batch

        final = items[0]
        if isinstance(final, MqttError):
            raise final
        return []

    async def _wait_for_items(self) -> None:
        while True:
            with self._lock:
                self._waiting = True
                self._arrived.clear()
            if self._items:
                self._waiting = False
                return
            try:
                await self._arrived.wait()
            finally:
                self._waiting = False


def _describe(reason_code: ReasonCode) -> str:
    return f"{reason_code.getName()} (0x{reason_code.value:02X})"
