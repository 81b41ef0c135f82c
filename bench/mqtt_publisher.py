"""A minimal MQTT 3.1.1 QoS 1 publisher over a plain socket, for load generation only.

paho-mqtt 2.2 used about 190 µs of CPU per QoS 1 publish, measured with 20,000 messages from one
process with ``loop_start`` on a busy 2-core machine. Its network thread and the caller share the
GIL, and each publish writes a wake-up byte. On 2 cores that CPU is taken from the broker and the
aggregator under test. Here the PUBLISH packets of a batch are encoded before the timed part,
and publishing writes a slice of packets per ``send`` call. The PUBACKs are only counted. It
sends CONNECT with keepalive 0 (no PINGREQ needed) and a clean session, then only PUBLISH.
"""

from __future__ import annotations

import select
import socket
import struct

CONNECT_TIMEOUT_SECONDS = 10.0
PUBACK = 0x40
CONNACK = 0x20


def publish_packet(topic: str, payload: bytes, *, packet_id: int) -> bytes:
    """Encode a QoS 1 PUBLISH packet (MQTT 3.1.1, section 3.3)."""
    topic_bytes = topic.encode("utf-8")
    body = (
        struct.pack("!H", len(topic_bytes)) + topic_bytes + struct.pack("!H", packet_id) + payload
    )
    return bytes([0x32]) + remaining_length(len(body)) + body


def remaining_length(length: int) -> bytes:
    """Encode ``length`` as MQTT's variable-length integer."""
    encoded = bytearray()
    while True:
        digit, length = length % 128, length // 128
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


class RawPublisher:
    """One MQTT connection to ``127.0.0.1:port`` that sends PUBLISH packets and counts PUBACKs."""

    def __init__(self, client_id: str, port: int) -> None:
        self._socket = socket.create_connection(
            ("127.0.0.1", port), timeout=CONNECT_TIMEOUT_SECONDS
        )
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self.acknowledged = 0
        client = client_id.encode("utf-8")
        # Protocol name "MQTT", level 4 (3.1.1), flags: clean session, keepalive 0.
        variable = struct.pack("!H", 4) + b"MQTT" + bytes([4, 0x02]) + struct.pack("!H", 0)
        body = variable + struct.pack("!H", len(client)) + client
        self._socket.sendall(bytes([0x10]) + remaining_length(len(body)) + body)
        connack = self._receive_exactly(4)
        if connack[0] != CONNACK or connack[3] != 0:
            raise ConnectionError(
                f"the broker on port {port} rejected {client_id}: CONNACK {connack.hex()}"
            )
        self._socket.setblocking(False)

    def send(self, data: bytes) -> None:
        """Send ``data``, reading PUBACKs while the socket buffer is full so neither side stalls."""
        view = memoryview(data)
        while view:
            try:
                sent = self._socket.send(view)
            except BlockingIOError:
                sent = 0
            view = view[sent:]
            if view:
                self.read_acknowledgements(wait=0.001)

    def read_acknowledgements(self, *, wait: float = 0.0) -> int:
        """Read what has arrived, waiting up to ``wait`` seconds; return the PUBACKs so far."""
        if wait > 0:
            select.select([self._socket], [], [], wait)
        while True:
            try:
                chunk = self._socket.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self._buffer += chunk
        self._count_packets()
        return self.acknowledged

    def close(self) -> None:
        try:
            self._socket.setblocking(True)
            self._socket.sendall(bytes([0xE0, 0x00]))
        except OSError:
            pass
        self._socket.close()

    def _count_packets(self) -> None:
        buffer = self._buffer
        position = 0
        while position + 2 <= len(buffer):
            kind = buffer[position]
            length, header = _decode_length(buffer, position + 1)
            if length is None or position + header + length > len(buffer):
                break
            if kind & 0xF0 == PUBACK:
                self.acknowledged += 1
            position += header + length
        del buffer[:position]

    def _receive_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._socket.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection during CONNECT")
            data += chunk
        return data


def _decode_length(buffer: bytearray, start: int) -> tuple[int | None, int]:
    """Return the remaining length at ``start`` and the fixed header's size; None if incomplete."""
    length = 0
    multiplier = 1
    for offset in range(4):
        if start + offset >= len(buffer):
            return None, 0
        byte = buffer[start + offset]
        length += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return length, 2 + offset
        multiplier *= 128
    raise ValueError("malformed remaining length from the broker")
