"""The server's run loops.

``run_server`` runs storage, the embedded broker (optional), ingest, HTTP and the expiry sweep in
one event loop. ``run_ingest`` runs storage and ingest only, for extra ingest workers that share
the broker's messages with the server through a shared subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import uvicorn

from kooperant.local_http import EmbeddedUvicorn, bound_socket
from kooperant.logs import register_secret
from kooperant.mqtt import TlsSettings
from server.api import create_app
from server.broker import EmbeddedBroker
from server.errors import InvalidSettingError, StorageError
from server.ingest import Ingest, IngestSettings
from server.metrics import ServerMetrics
from server.monitoring_http import serve_monitoring
from server.monitoring_routes import monitoring_app
from server.mqtt_url import BrokerAddress, parse_broker_url
from server.proxies import forwarded_allow_ips
from server.request_notifier import RequestNotifier
from server.request_router import RequestRouter
from server.settings import ServerSettings as ServerSettings  # re-exported for callers
from server.status import ServerStatus
from server.storage import Storage
from server.tokens import TokenStore

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 5.0
HTTP_GRACEFUL_SHUTDOWN_SECONDS = 2
_STARTUP_POLL_SECONDS = 0.02
# Partitions are made months ahead, so an hourly check is early enough, and a retention period
# counted in days is kept to within an hour.
HISTORY_MAINTENANCE_INTERVAL = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_server(
    settings: ServerSettings,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Run the aggregator until ``stop`` is set; set ``ready`` once HTTP accepts connections.

    ``clock`` decides which offers have expired. Raises a ``server.errors.ServerError`` when a
    part cannot start (``TokensFileError`` for an invalid tokens file, before anything starts),
    and re-raises the error of a part that ends by itself, after stopping the others.
    """
    _register_secrets(settings)
    tokens = None
    if settings.tokens_file is not None:
        tokens = await asyncio.to_thread(TokenStore.load, settings.tokens_file)
    storage = await asyncio.to_thread(open_storage, settings)
    try:
        async with contextlib.AsyncExitStack() as stack:
            broker = await _broker_address(settings, stack)
            status = ServerStatus(broker_url=broker.url)
            parts = _Parts(storage, status, broker, tokens, clock)
            await _serve(settings, parts, stop, ready)
    finally:
        storage.close()
    logger.info("Server stopped")


async def run_ingest(
    settings: ServerSettings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Receive and store messages until ``stop`` is set, without HTTP or an embedded broker.

    Needs ``settings.broker_url`` and a database whose schema is current: a worker does not
    migrate, so that several workers starting together cannot race on a migration. Raises
    ``InvalidSettingError`` without a broker URL, and ``SchemaOutdatedError`` or
    ``DatabaseUnavailableError`` when the database is not ready.
    """
    _register_secrets(settings)
    if settings.broker_url is None:
        raise InvalidSettingError("ingest_needs_broker")
    broker = parse_broker_url(settings.broker_url)
    storage = await asyncio.to_thread(open_storage, replace(settings, migrate=False))
    try:
        status = ServerStatus(broker_url=broker.url)
        ingest = Ingest(storage, status, ingest_settings(settings, broker), clock=clock)
        if settings.metrics_port is None:
            await ingest.run(stop)
        else:
            metrics = ServerMetrics(storage, status, clock)
            app = monitoring_app(storage, status, metrics, settings.metrics_token)
            await serve_monitoring(app, settings.metrics_port, ingest.run(stop), stop)
    finally:
        storage.close()
    logger.info("Ingest stopped")


def ingest_settings(settings: ServerSettings, broker: BrokerAddress) -> IngestSettings:
    """Return the ingest part of ``settings`` for the broker at ``broker``."""
    tls = None
    if broker.tls:
        tls = TlsSettings(
            ca_file=settings.broker_ca_file,
            cert_file=settings.broker_cert_file,
            key_file=settings.broker_key_file,
            key_password=settings.broker_key_password,
        )
    return IngestSettings(
        broker=broker,
        cluster=settings.cluster,
        username=settings.broker_username,
        password=settings.broker_password,
        reconnect=settings.reconnect,
        client_id=settings.client_id,
        shared_group=settings.shared_group,
        session_expiry_seconds=settings.session_expiry_seconds,
        protocol=settings.broker_protocol,
        tls=tls,
    )


@dataclass(frozen=True)
class _Parts:
    storage: Storage
    status: ServerStatus
    broker: BrokerAddress
    tokens: TokenStore | None
    clock: Callable[[], datetime]


def check_http_address(host: str, port: int) -> None:
    """Bind ``host:port`` once and release it, or raise ``InvalidSettingError`` as ``run_server``.

    Lets a caller that starts other services first, such as the demo, fail before starting them.
    The port may still be taken between this check and ``run_server``.
    """
    with _listening_socket(host, port):
        pass


def open_storage(settings: ServerSettings) -> Storage:
    """Open the database and migrate it, or check its schema when ``migrate`` is off."""
    _register_secrets(settings)
    storage = Storage(settings.database)
    try:
        if settings.migrate:
            storage.migrate()
        else:
            storage.check_schema()
    except BaseException:
        storage.close()
        raise
    return storage


def _register_secrets(settings: ServerSettings) -> None:
    """Mask the passwords of ``settings`` in log lines from now on."""
    for secret in settings.secrets():
        register_secret(secret)


async def _broker_address(
    settings: ServerSettings, stack: contextlib.AsyncExitStack
) -> BrokerAddress:
    if settings.broker_url is not None:
        return parse_broker_url(settings.broker_url)
    broker = await stack.enter_async_context(
        EmbeddedBroker("127.0.0.1", settings.embedded_broker_port)
    )
    return BrokerAddress(broker.host, broker.port)


async def _serve(
    settings: ServerSettings,
    parts: _Parts,
    stop: asyncio.Event,
    ready: asyncio.Event | None,
) -> None:
    ingest = Ingest(
        parts.storage, parts.status, ingest_settings(settings, parts.broker), clock=parts.clock
    )
    # Only server run routes requests, not server ingest, so exactly one process publishes them.
    router = RequestRouter(parts.storage, ingest_settings(settings, parts.broker))
    notifier = None
    if settings.smtp is not None:
        notifier = RequestNotifier(
            parts.storage, settings.smtp, public_url=settings.public_url, clock=parts.clock
        )
    metrics = ServerMetrics(
        parts.storage, parts.status, parts.clock, router=router, notifier=notifier
    )
    app = create_app(
        parts.storage,
        parts.status,
        tokens=parts.tokens,
        clock=parts.clock,
        requests_changed=router.wakeup,
        metrics=metrics,
        metrics_token=settings.metrics_token,
    )
    config = uvicorn.Config(
        app,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=HTTP_GRACEFUL_SHUTDOWN_SECONDS,
        # uvicorn (0.55) trusts X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1 by default,
        # so any local client could fake its address (the login lockout key) and HTTPS. Only the
        # proxies the operator named are trusted, and none by default.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=forwarded_allow_ips(settings.trusted_proxy_networks),
    )
    if settings.trusted_proxies:
        logger.info(
            "Trusting X-Forwarded-For and X-Forwarded-Proto from the proxies %s",
            ", ".join(settings.trusted_proxies),
        )
    http = EmbeddedUvicorn(config)

    with _listening_socket(settings.http_host, settings.http_port) as http_socket:
        ingest_stop = asyncio.Event()
        tasks = [
            asyncio.create_task(ingest.run(ingest_stop), name="ingest"),
            asyncio.create_task(http.serve(sockets=[http_socket]), name="http"),
            asyncio.create_task(
                sweep_expired(
                    parts.storage,
                    parts.clock,
                    settings.expiry_sweep_seconds,
                    ingest_stop,
                    history_retention_days=settings.history_retention_days,
                ),
                name="expiry sweep",
            ),
            asyncio.create_task(router.run(ingest_stop), name="request router"),
        ]
        if notifier is not None:
            tasks.append(asyncio.create_task(notifier.run(ingest_stop), name="request e-mails"))
        try:
            await _wait_started(http, tasks)
            host, port = http_socket.getsockname()[:2]
            logger.info("HTTP API and dashboard listening on http://%s:%d/", host, port)
            if ready is not None:
                ready.set()
            await _wait_for_stop(stop, tasks)
        finally:
            http.should_exit = True
            ingest_stop.set()
            await _finish(tasks)


async def sweep_expired(
    storage: Storage,
    clock: Callable[[], datetime],
    interval_seconds: float,
    stop: asyncio.Event,
    *,
    history_retention_days: int = 0,
) -> None:
    """Delete expired offers and expire requests every ``interval_seconds`` until ``stop`` is set.

    The first sweep and then one every ``HISTORY_MAINTENANCE_INTERVAL`` by ``clock`` also create
    missing history partitions and delete history older than ``history_retention_days`` (0
    keeps it). A failed sweep is logged and tried again at the next interval, a failed history
    maintenance at the next hour.
    """
    next_maintenance: datetime | None = None
    while not stop.is_set():
        now = clock()
        try:
            deleted = await asyncio.to_thread(storage.sweep, now)
        except StorageError as error:
            logger.error("Could not delete expired offers: %s", error)
        else:
            if deleted:
                logger.info("Deleted %d expired offers", deleted)
        await _expire_requests(storage, now)
        if next_maintenance is None or now >= next_maintenance:
            await _maintain_history(storage, now, history_retention_days)
            next_maintenance = now + HISTORY_MAINTENANCE_INTERVAL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


async def _maintain_history(storage: Storage, now: datetime, retention_days: int) -> None:
    try:
        await asyncio.to_thread(storage.maintain_history, now, retention_days)
    except StorageError as error:
        logger.error(
            "History maintenance failed; retrying in %s: %s", HISTORY_MAINTENANCE_INTERVAL, error
        )


async def _expire_requests(storage: Storage, now: datetime) -> None:
    try:
        expired = await asyncio.to_thread(storage.expire_requests, now)
    except StorageError as error:
        logger.error("Marking due capacity requests expired failed: %s", error)
        return
    if expired:
        logger.info("Marked %d capacity requests expired: %s", len(expired), ", ".join(expired))


@contextlib.contextmanager
def _listening_socket(host: str, port: int) -> Iterator[socket.socket]:
    # Binding here, not in uvicorn, turns a taken port into an error instead of uvicorn's
    # sys.exit(1) inside the event loop.
    try:
        sock = bound_socket(host, port)
    except OSError as error:
        raise _bind_error(host, port, error) from error
    with sock:
        yield sock


def _bind_error(host: str, port: int, error: OSError) -> InvalidSettingError:
    # A taken or privileged port needs another --port. Anything else, such as a name that does
    # not resolve or an address of no local interface, needs another --host.
    if error.errno == errno.EADDRINUSE:
        return InvalidSettingError("http_port_in_use", host=host, port=port)
    if error.errno == errno.EACCES:
        return InvalidSettingError("http_port_denied", host=host, port=port, detail=str(error))
    return InvalidSettingError("http_host_invalid", host=host, port=port, detail=str(error))


async def _wait_started(http: uvicorn.Server, tasks: list[asyncio.Task[None]]) -> None:
    while not http.started:
        for task in tasks:
            if task.done():
                task.result()
                raise RuntimeError(f"server part {task.get_name()!r} ended during start-up")
        await asyncio.sleep(_STARTUP_POLL_SECONDS)


async def _wait_for_stop(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    for task in tasks:
        if task in done:
            task.result()
            raise RuntimeError(f"server part {task.get_name()!r} stopped unexpectedly")


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_SECONDS)
    for task in pending:
        logger.warning("Server part %s did not stop in time; cancelling it", task.get_name())
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
