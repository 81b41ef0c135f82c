"""Cached results of "must members of this cluster be registered, and is this one?".

Ingest checks every message, so the results of ``Storage.registration_required`` and a positive
``Storage.is_registered`` are kept for ``ttl_seconds``. A negative ``is_registered`` is not
cached, so a member registered with ``kooperant server add-member`` is accepted from its next
message. A cluster's first registration takes effect within ``ttl_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from server.storage import Storage

DEFAULT_TTL_SECONDS = 5.0


class RegistrationCache:
    """The registration lookups of ``storage``, each result kept for ``ttl_seconds``.

    The methods call the storage, so they raise ``StorageError`` and belong in a worker thread.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._required: dict[str, tuple[float, bool]] = {}
        self._registered: dict[tuple[str, str], float] = {}

    def rejection_reason(self, cluster: str, member: str) -> str | None:
        """Return why a message of ``cluster/member`` is rejected, or ``None`` if it may pass."""
        if not self._registration_required(cluster) or self._is_registered(cluster, member):
            return None
        return (
            f"member {member!r} is not registered in cluster {cluster!r}; "
            "the coordinator registers members with kooperant server add-member"
        )

    def _registration_required(self, cluster: str) -> bool:
        now = self._monotonic()
        cached = self._required.get(cluster)
        if cached is not None and cached[0] > now:
            return cached[1]
        required = self._storage.registration_required(cluster)
        self._required[cluster] = (now + self._ttl_seconds, required)
        return required

    def _is_registered(self, cluster: str, member: str) -> bool:
        now = self._monotonic()
        valid_until = self._registered.get((cluster, member))
        if valid_until is not None and valid_until > now:
            return True
        registered = self._storage.is_registered(cluster, member)
        if registered:
            self._registered[(cluster, member)] = now + self._ttl_seconds
        return registered
