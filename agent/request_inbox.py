"""Receiving capacity requests: check each message on the request topics and store it.

The agent subscribes with QoS 1 to ``kooperant/v1/{cluster}/{member}/requests/+`` after each
connect. ``RequestInbox.receive`` handles one message and returns once the result is committed,
so the caller acknowledges the message only afterwards:

- A request payload is checked (``parse_request``, and its ``request_id``, ``cluster`` and
  ``member`` equal to the topic's and to this agent's). An invalid one is dropped, counted in
  ``invalid_requests`` and logged at WARNING with its topic and reason, once per topic and
  payload, because the broker sends a retained request again on every subscribe.
- A valid request is stored once with its ``delivered`` answer (``RequestStore.store``). A request
  for an offer that is not published, or that does not take requests, is declined at once with
  a reason in Polish and English. The runner's latest cycle decides that
  (``agent.request_offers``), because the owner may have changed the policy while the agent was
  stopped. Before the first cycle, the latest offer payload queued or sent decides it.
- An empty payload means the aggregator made the request final; the store closes an open request
  and queues the clear of the answer topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from agent.audit_records import payload_sha256
from agent.errors import AuditLogError
from agent.request_offers import OfferDecision, payload_decision
from agent.requests import RequestState, RequestStore
from kooperant.i18n import Catalog, use_language
from kooperant.mqtt import MqttSession, SubscribeRejected, subscribed_to
from kooperant.protocol import OfferValidationError, TopicError
from kooperant.protocol.request import CapacityRequest, parse_request
from kooperant.protocol.topics import parse_request_topic, request_subscription

logger = logging.getLogger(__name__)

_ = Catalog.for_module(__name__)


class InvalidRequest(Exception):
    """Raised inside the inbox for a message that is not a valid request for this member."""


class RequestInbox:
    """Stores the requests sent to one member's request topics in ``store``."""

    def __init__(self, store: RequestStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self._clock = clock
        self.topic_filter = request_subscription(store.cluster, store.member)
        self.invalid_requests = 0
        """Invalid messages dropped in this run, each counted once."""
        self._seen_invalid: set[tuple[str, str]] = set()
        self._subscribe_rejected = False
        self.offer_decision: OfferDecision = payload_decision
        """Decides whether a requested offer takes requests. The runner replaces it after each
        cycle with that cycle's ``CycleDecisions``."""

    async def subscribe(self, session: MqttSession) -> None:
        """Subscribe to the member's request topics; a rejection is logged, not raised.

        Offers must still go out when the broker's ACL does not let this member read its
        requests, so the agent then runs without receiving them.
        """
        try:
            await session.subscribe([self.topic_filter], qos=1)
        except SubscribeRejected as error:
            if not self._subscribe_rejected:
                self._subscribe_rejected = True
                logger.error(
                    "%s; capacity requests are not received. Let this member read %s in the "
                    "broker's ACL",
                    error,
                    self.topic_filter,
                )
            return
        if self._subscribe_rejected:
            self._subscribe_rejected = False
            logger.info("Subscribed to %s again", self.topic_filter)

    async def serve(self, session: MqttSession, queued: Callable[[], None]) -> None:
        """Handle the session's messages until it ends, acknowledging each after its commit.

        Calls ``queued`` after a message queued an answer. Raises ``ConnectionLost`` when the
        connection drops. A message the file could not take stays unacknowledged, so the broker
        sends it again on the next connection of the kept session.
        """
        async for message in session.messages():
            if not subscribed_to(message.topic, [self.topic_filter]):
                logger.debug("Ignored a message on %s, which is not a request topic", message.topic)
                session.ack(message)
                continue
            try:
                handled = self.receive(message.topic, message.payload)
            except AuditLogError as error:
                logger.error(
                    "Cannot store the request on %s; it is received again after a reconnect: %s",
                    message.topic,
                    error,
                )
                continue
            session.ack(message)
            if handled:
                queued()

    def receive(self, topic: str, payload: bytes) -> bool:
        """Handle one message on a request topic; return whether an answer or clear was queued.

        Raises ``AuditLogError`` when the file cannot be written; the message is then not
        handled, and the caller must not acknowledge it.
        """
        try:
            request_id = self._check_topic(topic)
            request = None if not payload else self._check_request(topic, payload, request_id)
        except InvalidRequest as error:
            self._invalid(topic, payload, str(error))
            return False

        now = self._clock()
        if request is None:
            return self._cleared(request_id, now)
        stored = self.store.store(request, now, self._decline_reason_for(request.resource))
        if stored is None:
            logger.debug("Request %s is stored already, so no answer is queued again", request_id)
            return False
        if stored.state is RequestState.DECLINED:
            logger.info(
                "Declined request %s from %s for %s at once: the offer takes no requests",
                request_id,
                request.requester,
                request.resource,
            )
        else:
            logger.info(
                "Stored request %s from %s for %s and queued the delivered answer",
                request_id,
                request.requester,
                request.resource,
            )
        return True

    def _decline_reason_for(self, resource: str) -> Callable[[bytes | None], str | None]:
        decide = self.offer_decision
        return lambda offer_payload: _decision_reason(decide(resource, offer_payload))

    def _cleared(self, request_id: str, now: datetime) -> bool:
        stored = self.store.cleared(request_id, now)
        if stored is None:
            return False
        logger.info(
            "Aggregator cleared request %s (%s here); clearing its answer topic",
            request_id,
            stored.state,
        )
        return True

    def _check_topic(self, topic: str) -> str:
        try:
            cluster, member, request_id = parse_request_topic(topic)
        except TopicError as error:
            raise InvalidRequest(str(error)) from error
        if (cluster, member) != (self.store.cluster, self.store.member):
            raise InvalidRequest(
                f"the topic names cluster {cluster!r} and member {member!r}, this agent is "
                f"{self.store.member!r} in {self.store.cluster!r}"
            )
        return request_id

    def _check_request(self, topic: str, payload: bytes, request_id: str) -> CapacityRequest:
        try:
            request = parse_request(payload)
        except OfferValidationError as error:
            raise InvalidRequest(str(error)) from error
        for field, found, expected in (
            ("request_id", request.request_id, request_id),
            ("cluster", request.cluster, self.store.cluster),
            ("member", request.member, self.store.member),
        ):
            if found != expected:
                raise InvalidRequest(
                    f"payload {field} {found!r} differs from the topic's {expected!r}"
                )
        return request

    def _invalid(self, topic: str, payload: bytes, reason: str) -> None:
        key = (topic, payload_sha256(payload))
        if key in self._seen_invalid:
            return
        self._seen_invalid.add(key)
        self.invalid_requests += 1
        logger.warning("Dropped an invalid request on %s: %s", topic, reason)


def _decision_reason(accepts: bool | None) -> str | None:
    """Return the reason to decline at once, in Polish and English because the requester may read
    either, or ``None`` when the offer takes requests."""
    if accepts is None:
        return _both_languages("decline.not_offered")
    if accepts:
        return None
    return _both_languages("decline.no_requests")


def _both_languages(message_id: str) -> str:
    with use_language("pl"):
        polish = _(message_id)
    with use_language("en"):
        english = _(message_id)
    return f"{polish} / {english}"
