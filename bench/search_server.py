"""Serve the aggregator app for ``search.py``: ``search_server.py DATABASE_URL TOKENS_FILE PORT``.

The app has no MQTT ingest, so ``/healthz`` reports the broker as disconnected; the searches
and pages it serves read the database only.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn

from server.api import create_app
from server.status import ServerStatus
from server.storage import Storage
from server.tokens import TokenStore


def main() -> None:
    database_url, tokens_file, port = sys.argv[1:]
    storage = Storage(database_url)
    app = create_app(
        storage, ServerStatus(broker_url="-"), tokens=TokenStore.load(Path(tokens_file))
    )
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
