"""E-mails about capacity requests: recipients, content, retries and old rows, over real SMTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from kooperant.backoff import BackoffPolicy
from kooperant.net import free_tcp_port
from kooperant.protocol.answer import Answer, AnswerState
from kooperant.protocol.envelope import Envelope
from kooperant.protocol.request import CapacityRequest, Contact
from server.mail_settings import SmtpSettings
from server.request_notifier import MAX_MAIL_ATTEMPTS, RequestNotifier
from server.storage import Storage, Viewer
from server.storage.profiles import MemberProfile
from server.storage.tables import request_log
from tests.server.helpers import T0, hours, machine_offer, storage_offer
from tests.server.test_requests_storage import amount_request, machine_request
from tests.support.certificates import CertificateAuthority, CertificateFiles
from tests.support.smtp_sink import ReceivedMail, SmtpSink

# The SMTPS sink requires AUTH without aiosmtpd's TLS check (see tests/support/smtp_sink.py).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

CLUSTER = "pomorskie-metal"
BETA = Viewer(cluster=CLUSTER, member="beta")
NOW = T0 - hours(1)
OWNER_EMAIL = "biuro@acme.example"
REQUESTER_EMAIL = "zamowienia@beta.example"
CONTACT_EMAIL = "anna@beta.example"
SENDER = "kooperant@klaster.example"
PUBLIC_URL = "https://kooperant.example.pl/"
# Delays of 10 s, 20 s, 40 s, ... without jitter, so the tests know when a retry is due.
RETRY = BackoffPolicy(minimum=10.0, maximum=60.0, jitter=0.0)
POLISH_MESSAGE = "Frezowanie 40 detali ze stali nierdzewnej – zażółć gęślą jaźń"


class Clock:
    """A clock that moves only when a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def offers(storage: Storage) -> Storage:
    """Storage with acme's machine and hall, and the profiles of acme and beta."""
    storage.store_offer(
        machine_offer(name="DMU 50 (frezarka 5-osiowa)", accepts_requests=True), NOW
    )
    storage.store_offer(storage_offer(accepts_requests=True), NOW)
    storage.save_profile(
        MemberProfile(CLUSTER, "acme", "Acme Obróbka Sp. z o.o.", contact_email=OWNER_EMAIL), NOW
    )
    storage.save_profile(
        MemberProfile(CLUSTER, "beta", "Beta Narzędzia", contact_email=REQUESTER_EMAIL), NOW
    )
    return storage


@pytest.fixture
def sink_port() -> int:
    return free_tcp_port()


@pytest.fixture
def sink(sink_port: int) -> Iterator[SmtpSink]:
    with SmtpSink(sink_port) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def notifier_for(storage: Storage, port: int, clock: Clock, **smtp_changes: Any) -> RequestNotifier:
    smtp = SmtpSettings(url=f"smtp://127.0.0.1:{port}", sender=SENDER, timeout_seconds=5.0)
    return RequestNotifier(
        storage,
        replace(smtp, **smtp_changes),
        public_url=PUBLIC_URL,
        clock=clock,
        retry=RETRY,
        random_value=lambda: 0.0,
    )


def create(
    storage: Storage, request: CapacityRequest | None = None, now: datetime = NOW
) -> CapacityRequest:
    """Store ``request``, by default beta's request for two hours of acme's machine, at ``now``."""
    request = request or machine_request(
        message=POLISH_MESSAGE, contact=Contact("Anna Żak", email=CONTACT_EMAIL)
    )
    storage.create_request(request, viewer=BETA, now=now)
    return request


def answer(request: CapacityRequest, state: AnswerState, seq: int) -> Answer:
    reason = "Maszyna zajęta do piątku" if state == AnswerState.DECLINED else None
    return Answer(
        request_id=request.request_id,
        cluster=CLUSTER,
        member="acme",
        resource=request.resource,
        state=state,
        decided_at=NOW,
        reason=reason,
        envelope=Envelope(f"answer-{seq}", seq),
    )


def mail_rows(storage: Storage, database_url: str) -> list[tuple[str, str | None, int]]:
    """Return (state, mail_state, mail_attempts) of every request log row, oldest first."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    request_log.c.state, request_log.c.mail_state, request_log.c.mail_attempts
                ).order_by(request_log.c.id)
            ).all()
    finally:
        engine.dispose()
    return [(row.state, row.mail_state, row.mail_attempts) for row in rows]


def only_mail(sink: SmtpSink) -> ReceivedMail:
    mails = sink.wait_for(1)
    assert len(mails) == 1
    return mails[0]


# Recipients and content


async def test_new_request_mails_owner(
    offers: Storage, sink: SmtpSink, clock: Clock, database_url: str
) -> None:
    request = create(offers)

    sent = await notifier_for(offers, sink.port, clock).send_waiting()
    mail = only_mail(sink)

    assert sent == 1
    assert mail.recipients == (OWNER_EMAIL,)
    assert mail.sender == SENDER
    assert mail.message["To"] == OWNER_EMAIL
    assert mail.message["From"] == SENDER
    assert mail.message["Subject"] == (
        "[kooperant] Nowe zapytanie o DMU 50 (frezarka 5-osiowa) / "
        "New request for DMU 50 (frezarka 5-osiowa)"
    )
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert POLISH_MESSAGE in mail.text
    assert "Zapytujący: Beta Narzędzia (beta)" in mail.text
    assert "Requester: Beta Narzędzia (beta)" in mail.text
    assert f"Kontakt: Anna Żak, {CONTACT_EMAIL}" in mail.text
    assert "Termin: 2026-12-07 08:00 – 10:00 CET (Europe/Warsaw)" in mail.text
    assert "Slot: 2026-12-07 08:00 – 10:00 CET (Europe/Warsaw)" in mail.text
    assert f"https://kooperant.example.pl/requests/{request.request_id}" in mail.text
    assert mail.text.index("Oferta:") < mail.text.index("Offer:")
    assert mail_rows(offers, database_url) == [("sent", "sent", 1)]


async def test_polish_characters_survive_transport(
    offers: Storage, sink: SmtpSink, clock: Clock
) -> None:
    create(offers)

    await notifier_for(offers, sink.port, clock).send_waiting()
    mail = only_mail(sink)

    assert mail.message.get_content_charset() == "utf-8"
    assert mail.message["Content-Transfer-Encoding"] == "quoted-printable"
    assert all(byte < 128 for byte in mail.raw), "the raw e-mail should be 7-bit"
    assert "zażółć gęślą jaźń" in mail.text
    assert "Przyjmij albo odrzuć zapytanie" in mail.text


async def test_amount_request_shows_amount(offers: Storage, sink: SmtpSink, clock: Clock) -> None:
    create(offers, amount_request(10.0))

    await notifier_for(offers, sink.port, clock).send_waiting()
    mail = only_mail(sink)

    assert "Ilość: 10 pallets (pallet_places)" in mail.text
    assert "Amount: 10 pallets (pallet_places)" in mail.text
    assert "Termin:" not in mail.text


async def test_accepted_mails_requester_and_member(
    offers: Storage, sink: SmtpSink, clock: Clock, database_url: str
) -> None:
    request = create(offers)
    notifier = notifier_for(offers, sink.port, clock)
    await notifier.send_waiting()
    offers.apply_answer(answer(request, AnswerState.DELIVERED, 1), NOW)
    offers.apply_answer(answer(request, AnswerState.ACCEPTED, 2), NOW)

    await notifier.send_waiting()
    mails = sink.wait_for(2)

    assert len(mails) == 2
    accepted = mails[1]
    assert accepted.recipients == (CONTACT_EMAIL, REQUESTER_EMAIL)
    assert "Zapytanie o DMU 50 (frezarka 5-osiowa) przyjęte" in accepted.message["Subject"]
    assert "Request for DMU 50 (frezarka 5-osiowa) accepted" in accepted.message["Subject"]
    assert "Acme Obróbka Sp. z o.o. (acme) przyjął zapytanie" in accepted.text
    assert "Stan: przyjęte" in accepted.text
    assert "State: accepted" in accepted.text
    assert mail_rows(offers, database_url) == [
        ("sent", "sent", 1),
        ("delivered", "skipped", 0),
        ("accepted", "sent", 1),
    ]


async def test_declined_mails_requester_with_reason(
    offers: Storage, sink: SmtpSink, clock: Clock
) -> None:
    request = create(offers)
    offers.apply_answer(answer(request, AnswerState.DECLINED, 1), NOW)

    await notifier_for(offers, sink.port, clock).send_waiting()
    declined = sink.wait_for(2)[1]

    assert declined.recipients == (CONTACT_EMAIL, REQUESTER_EMAIL)
    assert "Powód: Maszyna zajęta do piątku" in declined.text
    assert "Reason: Maszyna zajęta do piątku" in declined.text
    assert "odrzucone" in declined.message["Subject"]


async def test_same_address_gets_one_copy(offers: Storage, sink: SmtpSink, clock: Clock) -> None:
    request = create(offers, machine_request(contact=Contact("Jan", email=REQUESTER_EMAIL.upper())))
    offers.apply_answer(answer(request, AnswerState.ACCEPTED, 1), NOW)

    await notifier_for(offers, sink.port, clock).send_waiting()
    accepted = sink.wait_for(2)[1]

    assert accepted.recipients == (REQUESTER_EMAIL.upper(),)


async def test_expiry_mails_both_sides(
    offers: Storage, sink: SmtpSink, clock: Clock, database_url: str
) -> None:
    request = create(offers)
    notifier = notifier_for(offers, sink.port, clock)
    await notifier.send_waiting()
    offers.expire_requests(request.expires_at)
    clock.now = request.expires_at

    await notifier.send_waiting()
    expired = sink.wait_for(2)[1]

    assert expired.recipients == (OWNER_EMAIL, CONTACT_EMAIL, REQUESTER_EMAIL)
    assert "wygasło" in expired.message["Subject"]
    assert "expired before the owner decided" in expired.text
    assert mail_rows(offers, database_url) == [("sent", "sent", 1), ("expired", "sent", 1)]


async def test_withdrawal_mails_owner(offers: Storage, sink: SmtpSink, clock: Clock) -> None:
    request = create(offers)
    offers.withdraw_request(request.request_id, viewer=BETA, now=NOW)

    await notifier_for(offers, sink.port, clock).send_waiting()
    withdrawn = sink.wait_for(2)[1]

    assert withdrawn.recipients == (OWNER_EMAIL,)
    assert "Beta Narzędzia (beta) wycofał zapytanie" in withdrawn.text


async def test_row_without_recipient_is_skipped(
    storage: Storage, sink: SmtpSink, clock: Clock, database_url: str
) -> None:
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    create(storage)  # acme has no profile, so no address.

    sent = await notifier_for(storage, sink.port, clock).send_waiting()

    assert sent == 0
    assert sink.mails == []
    assert mail_rows(storage, database_url) == [("sent", "skipped", 0)]


async def test_offer_name_cannot_inject_headers(
    storage: Storage, sink: SmtpSink, clock: Clock
) -> None:
    storage.store_offer(
        machine_offer(name="DMU\r\nBcc: intruz@evil.example\nX-Evil: 1", accepts_requests=True), NOW
    )
    storage.save_profile(MemberProfile(CLUSTER, "acme", "Acme", contact_email=OWNER_EMAIL), NOW)
    create(storage)

    await notifier_for(storage, sink.port, clock).send_waiting()
    mail = only_mail(sink)

    assert mail.recipients == (OWNER_EMAIL,)
    assert mail.message["Bcc"] is None
    assert mail.message["X-Evil"] is None
    assert "\n" not in mail.message["Subject"]
    assert "DMU Bcc: intruz@evil.example X-Evil: 1" in mail.message["Subject"]


# Old rows, retries and failures


async def test_old_rows_skipped_in_one_line(
    offers: Storage,
    sink: SmtpSink,
    clock: Clock,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = create(offers)
    create(offers, amount_request())
    offers.withdraw_request(old.request_id, viewer=BETA, now=NOW + hours(1))
    clock.advance(timedelta(hours=25, seconds=1).total_seconds())
    create(offers, machine_request(created_at=clock.now), now=clock.now)

    with caplog.at_level(logging.WARNING, logger="server.request_notifier"):
        sent = await notifier_for(offers, sink.port, clock).send_waiting()

    skipped_lines = [record for record in caplog.records if "Skipped" in record.getMessage()]
    assert [record.getMessage() for record in skipped_lines] == [
        "Skipped 3 e-mails about requests logged more than 24 hours ago"
    ]
    assert sent == 1
    assert sink.wait_for(1)[0].recipients == (OWNER_EMAIL,)
    assert [row[1] for row in mail_rows(offers, database_url)] == [
        "skipped",
        "skipped",
        "skipped",
        "sent",
    ]


async def test_server_down_retried_then_sent(
    offers: Storage, clock: Clock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_tcp_port()
    create(offers)
    notifier = notifier_for(offers, port, clock)

    with caplog.at_level(logging.WARNING, logger="server.request_notifier"):
        first = await notifier.send_waiting()
    clock.advance(9)
    early = await notifier.send_waiting()
    attempts_before_due = mail_rows(offers, database_url)
    clock.advance(1)
    with SmtpSink(port) as sink:
        due = await notifier.send_waiting()
        mail = only_mail(sink)

    assert (first, early, due) == (0, 0, 1)
    assert attempts_before_due == [("sent", None, 1)]
    assert mail.recipients == (OWNER_EMAIL,)
    assert mail_rows(offers, database_url) == [("sent", "sent", 2)]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "attempt 1 of 5; trying again in 10 s" in warnings[0]


async def test_five_failures_mark_failed(
    offers: Storage, clock: Clock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_tcp_port()
    request = create(offers)
    notifier = notifier_for(offers, port, clock)

    with caplog.at_level(logging.DEBUG, logger="server.request_notifier"):
        for _ in range(MAX_MAIL_ATTEMPTS + 2):
            await notifier.send_waiting()
            clock.advance(RETRY.maximum)

    assert mail_rows(offers, database_url) == [("sent", "failed", MAX_MAIL_ATTEMPTS)]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert request.request_id in message
    assert "after 5 attempts" in message
    assert f"127.0.0.1:{port}" in message
    assert "ConnectionRefusedError" in message


async def test_invalid_address_is_left_out(
    offers: Storage,
    sink: SmtpSink,
    clock: Clock,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    offers.save_profile(
        MemberProfile(CLUSTER, "acme", "Acme", contact_email="Biuro <biuro@acme.example>"), NOW
    )
    create(offers)

    with caplog.at_level(logging.WARNING, logger="server.request_mail"):
        sent = await notifier_for(offers, sink.port, clock).send_waiting()

    assert sent == 0
    assert sink.mails == []
    assert mail_rows(offers, database_url) == [("sent", "skipped", 0)]
    assert "invalid e-mail address 'Biuro <biuro@acme.example>'" in caplog.text


# Login and TLS


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, CertificateFiles]:
    authority = CertificateAuthority.create(tmp_path / "ca")
    return authority.cert_file, authority.issue_server()


async def test_starttls_with_login_sends(
    offers: Storage, clock: Clock, certificate: tuple[Path, CertificateFiles]
) -> None:
    ca_file, server_files = certificate
    port = free_tcp_port()
    create(offers)

    with SmtpSink(port, credentials=("kooperant", "tajne-haslo"), certificate=server_files) as sink:
        notifier = notifier_for(
            offers,
            port,
            clock,
            starttls=True,
            ca_file=ca_file,
            username="kooperant",
            password="tajne-haslo",
        )
        sent = await notifier.send_waiting()

    assert sent == 1
    assert sink.mails[0].recipients == (OWNER_EMAIL,)


async def test_smtps_with_login_sends(
    offers: Storage, clock: Clock, certificate: tuple[Path, CertificateFiles]
) -> None:
    ca_file, server_files = certificate
    port = free_tcp_port()
    create(offers)

    with SmtpSink(
        port, credentials=("kooperant", "haslo"), certificate=server_files, implicit_tls=True
    ) as sink:
        notifier = RequestNotifier(
            offers,
            SmtpSettings(
                url=f"smtps://127.0.0.1:{port}",
                sender=SENDER,
                username="kooperant",
                password="haslo",
                ca_file=ca_file,
                timeout_seconds=5.0,
            ),
            clock=clock,
        )
        sent = await notifier.send_waiting()

    assert sent == 1
    assert len(sink.mails) == 1


async def test_untrusted_certificate_not_sent(
    offers: Storage, clock: Clock, certificate: tuple[Path, CertificateFiles], tmp_path: Path
) -> None:
    _, server_files = certificate
    other_ca = CertificateAuthority.create(tmp_path / "other", name="other-ca")
    port = free_tcp_port()
    create(offers)

    with SmtpSink(port, certificate=server_files) as sink:
        notifier = notifier_for(offers, port, clock, starttls=True, ca_file=other_ca.cert_file)
        sent = await notifier.send_waiting()

    assert sent == 0
    assert sink.mails == []


async def test_starttls_not_offered_fails(
    offers: Storage, sink: SmtpSink, clock: Clock, database_url: str
) -> None:
    create(offers)

    sent = await notifier_for(offers, sink.port, clock, starttls=True).send_waiting()

    assert sent == 0
    assert sink.mails == []
    assert mail_rows(offers, database_url) == [("sent", None, 1)]


async def test_password_never_logged(
    offers: Storage,
    clock: Clock,
    certificate: tuple[Path, CertificateFiles],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ca_file, server_files = certificate
    password = "Zle-Haslo-8472"
    port = free_tcp_port()
    request = create(offers)
    notifier = notifier_for(
        offers,
        port,
        clock,
        starttls=True,
        ca_file=ca_file,
        username="kooperant",
        password=password,
    )

    with (
        SmtpSink(port, credentials=("kooperant", "inne"), certificate=server_files) as sink,
        caplog.at_level(logging.DEBUG),
    ):
        for _ in range(MAX_MAIL_ATTEMPTS):
            await notifier.send_waiting()
            clock.advance(RETRY.maximum)

    assert sink.mails == []
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any(request.request_id in line and "535" in line for line in errors)
    assert password not in caplog.text
    settings = SmtpSettings(url="smtp://h", sender=SENDER, username="u", password=password)
    assert password not in repr(settings)


async def test_amount_number_in_each_language(
    offers: Storage, sink: SmtpSink, clock: Clock
) -> None:
    create(offers, amount_request(12.5))

    await notifier_for(offers, sink.port, clock).send_waiting()
    mail = only_mail(sink)

    assert "Ilość: 12,5 pallets (pallet_places)" in mail.text
    assert "Amount: 12.5 pallets (pallet_places)" in mail.text
