#!/usr/bin/env python3
"""Measure the search API and the dashboard page of the aggregator on a large PostgreSQL cluster.

The script creates its own database ``kooperant_bench_<random>`` on the PostgreSQL server of
``--database-url``, migrates it with ``Storage.migrate()`` and loads a generated cluster with COPY
(see ``search_data.py``). Then it starts the aggregator app under uvicorn in a child process,
with a tokens file, and sends a mix of searches to ``GET /api/v1/resources`` and requests of the
dashboard page ``GET /`` one after another, as one member. It prints p50, p95 and max per kind of
search and, on its last lines, for the API and the page against the goals (API p95 under 100 ms,
page p95 under 300 ms). The database is dropped at the end unless ``--keep``.

Search parameters that the running API does not declare in its OpenAPI document, or rejects
with 422, are reported and their searches skipped, so the script runs against older and newer
versions of the API.

Run from the repository root: ``.venv/bin/python bench/search.py [--members 1000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bench.databases import bench_database, psycopg_url
from bench.machine import cpu_model
from bench.options import whole_number
from bench.search_data import (
    BENCH_TABLES,
    CAPABILITIES,
    CLUSTER,
    REGIONS,
    DataSet,
    load_cluster,
    member_id,
)
from kooperant.net import free_tcp_port
from kooperant.protocol import ResourceKind
from server.storage import Storage
from server.storage.urls import mask_password
from server.tokens import add_token

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
API_GOAL_MS = 100.0
PAGE_GOAL_MS = 300.0
SERVER_START_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 60.0
RESOURCES_PATH = "/api/v1/resources"
# Where the app serves its OpenAPI document: the current path first, then FastAPI's default.
OPENAPI_PATHS = ("/api/openapi.json", "/openapi.json")


@dataclass(frozen=True, slots=True)
class Search:
    """One kind of search: a name and a function that draws its query parameters.

    ``parameters`` lists, for each parameter the search needs, the names the API may give it;
    the first name the API declares is used.
    """

    name: str
    draw: Callable[[random.Random, dict[str, str]], list[tuple[str, str]]]
    parameters: tuple[tuple[str, ...], ...] = ()


@dataclass
class Timings:
    """Latencies in milliseconds per search name, and the searches skipped with the reason."""

    by_name: dict[str, list[float]] = field(default_factory=dict)
    totals: dict[str, list[int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def all(self) -> list[float]:
        return [value for values in self.by_name.values() for value in values]


def parse_arguments(arguments: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="URL of a database on the PostgreSQL server where the benchmark database is made "
        f"(default {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument("--members", type=whole_number, default=1000, help="members of the cluster")
    parser.add_argument("--offers", type=whole_number, default=20, help="current offers per member")
    parser.add_argument("--days", type=whole_number, default=90, help="days of offer history")
    parser.add_argument(
        "--history-per-day",
        type=whole_number,
        default=4,
        help="history versions of each offer per day (default 4, one per 6 hours)",
    )
    parser.add_argument(
        "--requests", type=whole_number, default=500, help="measured API searches (default 500)"
    )
    parser.add_argument(
        "--page-requests",
        type=whole_number,
        default=50,
        help="measured requests of the dashboard page (default 50)",
    )
    parser.add_argument(
        "--warmup", type=whole_number, default=3, help="unmeasured requests of each search first"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and the searches")
    parser.add_argument(
        "--keep", action="store_true", help="keep the benchmark database and print its URL"
    )
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="measure the database NAME that an earlier run kept with --keep instead of "
        "loading a new one; give the same size options as that run",
    )
    parser.add_argument(
        "--explain",
        type=Path,
        metavar="FILE",
        help="write EXPLAIN ANALYZE of the SQL behind each search to FILE",
    )
    parsed = parser.parse_args(arguments)
    shown = mask_password(parsed.database_url)
    try:
        driver = make_url(parsed.database_url).drivername
    except ArgumentError:
        parser.error(f"--database-url {shown!r} is not a URL such as {DEFAULT_DATABASE_URL}")
    if not driver.startswith("postgresql"):
        parser.error(f"--database-url must be a PostgreSQL URL, got {shown!r}")
    return parsed


def main() -> int:
    arguments = parse_arguments()
    server_url = make_url(arguments.database_url)
    data = DataSet(
        arguments.members,
        arguments.offers,
        arguments.days,
        arguments.history_per_day,
        arguments.seed,
    )
    if arguments.reuse is not None:
        database_url = server_url.set(drivername="postgresql", database=arguments.reuse)
        print(f"database: {arguments.reuse} (reused, not loaded)")
        run(database_url.render_as_string(hide_password=False), arguments, data, None)
        return 0

    with bench_database(server_url, keep=arguments.keep) as url:
        load_seconds = load(url, data, datetime.now(UTC).replace(microsecond=0))
        run(url, arguments, data, load_seconds)
    return 0


def run(
    database_url: str, arguments: argparse.Namespace, data: DataSet, load_seconds: float | None
) -> None:
    """Print the data sizes, measure the searches and the page, and print the report."""
    print_sizes(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="kooperant-bench-") as folder:
        tokens_path = Path(folder) / "tokens.yaml"
        token = add_token(tokens_path, CLUSTER, member_id(1))
        with running_server(database_url, tokens_path) as base_url:
            results = measure(base_url, token, arguments, now)
        if arguments.explain is not None:
            explain(database_url, tokens_path, token, arguments, now)
    print_report(results, load_seconds, database_url, data)


def load(database_url: str, data: DataSet, now: datetime) -> float:
    """Migrate the database and load the generated cluster; return the seconds it took."""
    started = time.perf_counter()
    storage = Storage(database_url)
    try:
        storage.migrate()
    finally:
        storage.close()
    migrated = time.perf_counter()
    with psycopg.connect(psycopg_url(database_url)) as connection:
        load_cluster(connection, data, now)
    loaded = time.perf_counter()
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as connection:
        # A database that has run for 90 days has been vacuumed and analysed by autovacuum.
        connection.execute("VACUUM (ANALYZE)")
    finished = time.perf_counter()
    print(
        f"load: migrate {migrated - started:.1f} s, COPY {loaded - migrated:.1f} s, "
        f"VACUUM ANALYZE {finished - loaded:.1f} s, total {finished - started:.1f} s"
    )
    return finished - started


def print_sizes(database_url: str) -> None:
    print(f"{'table':<24}{'rows':>14}{'size MB':>10}")
    with psycopg.connect(psycopg_url(database_url)) as connection:
        for table in BENCH_TABLES:
            count = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            # A partitioned table has no storage of its own, so its partitions are summed.
            # pg_partition_tree returns no rows for a table that is not partitioned.
            size = connection.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), "
                "pg_total_relation_size(%s::regclass)) FROM pg_partition_tree(%s::regclass)",
                (table, table),
            ).fetchone()
            assert count is not None and size is not None
            print(f"{table:<24}{count[0]:>14,}{size[0] / 2**20:>10,.1f}")
        total = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        assert total is not None
        print(f"{'database':<24}{'':>14}{total[0] / 2**20:>10,.1f}")


@contextmanager
def running_server(database_url: str, tokens_path: Path) -> Iterator[str]:
    """Run the aggregator app under uvicorn in a child process; yield its base URL."""
    port = free_tcp_port()
    script = Path(__file__).with_name("search_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), database_url, str(tokens_path), str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the aggregator exited with status {process.returncode} at start")
        try:
            httpx.get(f"{base_url}/healthz", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        return
    raise RuntimeError(
        f"the aggregator did not answer on {base_url} within {SERVER_START_SECONDS} s"
    )


def searches(now: datetime, members: int) -> list[Search]:
    """Return the kinds of search the benchmark mixes, each drawing its own parameters."""
    machine_tags = CAPABILITIES[ResourceKind.MACHINE]
    all_tags = [tag for tags in CAPABILITIES.values() for tag in tags]
    cities = [city for names in REGIONS.values() for city in names]

    def window(generator: random.Random) -> list[tuple[str, str]]:
        start = now + timedelta(days=generator.randint(1, 11), hours=generator.randint(0, 23))
        end = start + timedelta(days=generator.randint(1, 3))
        return [("from", start.isoformat()), ("to", end.isoformat())]

    def page(values: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [*values, ("limit", "50")]

    return [
        Search("first page", lambda g, n: page([])),
        Search("kind", lambda g, n: page([("kind", str(g.choice(list(CAPABILITIES))))])),
        Search("capability", lambda g, n: page([("capability", g.choice(all_tags))])),
        Search(
            "kind + capability",
            lambda g, n: page([("kind", "machine"), ("capability", g.choice(machine_tags))]),
        ),
        Search(
            "two capabilities",
            lambda g, n: page([("capability", tag) for tag in g.sample(machine_tags, 2)]),
        ),
        Search("time window", lambda g, n: page([("kind", "machine"), *window(g)])),
        Search(
            "capability + window",
            lambda g, n: page([("capability", g.choice(machine_tags)), *window(g)]),
        ),
        Search("member", lambda g, n: page([("member", member_id(g.randint(1, members)))])),
        Search(
            "deep page",
            lambda g, n: [("limit", "50"), ("offset", str(g.randint(0, 100) * 50))],
        ),
        Search(
            "region",
            lambda g, n: page([(n["region"], g.choice(list(REGIONS)))]),
            (("region", "voivodeship"),),
        ),
        Search("city", lambda g, n: page([(n["city"], g.choice(cities))]), (("city",),)),
        Search(
            "min free amount",
            lambda g, n: page(
                [
                    (n["min_free"], str(g.choice([50, 100, 500]))),
                    (n["quantity"], "pallet_places"),
                ]
            ),
            (("min_free",), ("quantity",)),
        ),
        Search(
            "sorted by free",
            lambda g, n: page([("kind", "machine"), (n["sort"], "free")]),
            (("sort",),),
        ),
        Search(
            "window sorted by next free",
            lambda g, n: page([*window(g), (n["sort"], "next_free")]),
            (("sort",),),
        ),
    ]


@dataclass(frozen=True, slots=True)
class Plan:
    """The searches the running API supports, with the API's name of each parameter."""

    searches: tuple[Search, ...]
    names: dict[str, dict[str, str]]
    skipped: dict[str, str]


def plan_searches(client: httpx.Client, now: datetime, members: int) -> Plan:
    """Keep the searches whose parameters the API declares in its OpenAPI document."""
    response = next(
        (found for found in map(client.get, OPENAPI_PATHS) if found.status_code == 200), None
    )
    if response is None:
        raise RuntimeError(f"OpenAPI document not found at {' or '.join(OPENAPI_PATHS)}")
    operation = response.json()["paths"][RESOURCES_PATH]["get"]
    declared = {parameter["name"] for parameter in operation.get("parameters", [])}

    kept: list[Search] = []
    names: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    for search in searches(now, members):
        mapping: dict[str, str] = {}
        for candidates in search.parameters:
            found = next((name for name in candidates if name in declared), None)
            if found is None:
                skipped[search.name] = f"the API declares none of: {', '.join(candidates)}"
                break
            mapping[candidates[0]] = found
        else:
            kept.append(search)
            names[search.name] = mapping
    return Plan(tuple(kept), names, skipped)


def measure(base_url: str, token: str, arguments: argparse.Namespace, now: datetime) -> Results:
    """Warm up, then time the API searches and the page requests one after another."""
    generator = random.Random(arguments.seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(
        base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
    ) as client:
        plan = plan_searches(client, now, arguments.members)
        api = Timings(skipped=dict(plan.skipped))
        usable = _warm_up(client, plan, api, generator, arguments.warmup)

        for _ in range(arguments.requests):
            search = generator.choice(usable)
            parameters = search.draw(generator, plan.names[search.name])
            elapsed, body = _timed_get(client, RESOURCES_PATH, parameters)
            api.by_name.setdefault(search.name, []).append(elapsed)
            api.totals.setdefault(search.name, []).append(int(body.get("total", -1)))

        page = Timings()
        pages: list[tuple[str, list[tuple[str, str]]]] = [("/", []), ("/", [("lang", "en")])]
        for path, parameters in pages * max(arguments.warmup, 1):
            _page(client, path, parameters, page)
        if not page.skipped:
            for index in range(arguments.page_requests):
                path, parameters = pages[index % len(pages)]
                elapsed = _page(client, path, parameters, page)
                page.by_name.setdefault("GET /", []).append(elapsed)
    return Results(plan, api, page)


@dataclass(frozen=True, slots=True)
class Results:
    plan: Plan
    api: Timings
    page: Timings


def _warm_up(
    client: httpx.Client,
    plan: Plan,
    api: Timings,
    generator: random.Random,
    rounds: int,
) -> list[Search]:
    """Send each search ``rounds`` times unmeasured; drop those the API rejects with 422."""
    usable = []
    for search in plan.searches:
        for _ in range(max(rounds, 1)):
            parameters = search.draw(generator, plan.names[search.name])
            response = client.get(RESOURCES_PATH, params=httpx.QueryParams(tuple(parameters)))
            if response.status_code == 422:
                api.skipped[search.name] = f"422 for {parameters}: {response.text[:300]}"
                break
            _check(response)
        else:
            usable.append(search)
    if not usable:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in api.skipped.items())
        raise RuntimeError(f"the API rejected every search: {reasons}")
    return usable


def _timed_get(
    client: httpx.Client, path: str, parameters: list[tuple[str, str]]
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = client.get(path, params=httpx.QueryParams(tuple(parameters)))
    elapsed = (time.perf_counter() - started) * 1000
    _check(response)
    body: dict[str, Any] = response.json()
    return elapsed, body


def _page(
    client: httpx.Client, path: str, parameters: list[tuple[str, str]], page: Timings
) -> float:
    started = time.perf_counter()
    response = client.get(path, params=httpx.QueryParams(tuple(parameters)), follow_redirects=False)
    html = response.text
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code in (303, 401):
        where = response.headers.get("location", "the sign-in form")
        page.skipped["GET /"] = (
            f"status {response.status_code} ({where}): the page does not accept the member's "
            "bearer token, so it needs a signed-in session this script does not create"
        )
        return elapsed
    _check(response)
    if "<html" not in html.lower():
        raise RuntimeError(f"GET {path} returned no HTML page: {html[:200]!r}")
    return elapsed


def _check(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(
            f"GET {response.url} returned {response.status_code}: {response.text[:500]}"
        )


def explain(
    database_url: str,
    tokens_path: Path,
    token: str,
    arguments: argparse.Namespace,
    now: datetime,
) -> None:
    """Write EXPLAIN ANALYZE of every SQL statement each search runs to ``arguments.explain``.

    The app runs in this process with a listener that records the statements the storage sends,
    so the plans are of the queries the running code makes, whatever they are.
    """
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from server.api import create_app
    from server.status import ServerStatus
    from server.tokens import TokenStore

    storage = Storage(database_url)
    app = create_app(storage, ServerStatus(broker_url="-"), tokens=TokenStore.load(tokens_path))
    recorded: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and statement.strip() != "SELECT 1":
            recorded.append((statement, parameters))

    event.listen(storage.engine, "before_cursor_execute", record)
    generator = random.Random(arguments.seed)
    headers = {"Authorization": f"Bearer {token}"}
    lines: list[str] = []
    try:
        with TestClient(app, headers=headers) as client:
            plan = plan_searches(client, now, arguments.members)
            for search in plan.searches:
                parameters = search.draw(generator, plan.names[search.name])
                recorded.clear()
                response = client.get(RESOURCES_PATH, params=httpx.QueryParams(tuple(parameters)))
                lines.append(f"### {search.name}: {response.status_code} {response.url}")
                lines += _plans(storage, list(recorded))
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
        storage.close()
    arguments.explain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"EXPLAIN ANALYZE of each search written to {arguments.explain}")


def _plans(storage: Any, statements: list[tuple[str, Any]]) -> list[str]:
    lines = []
    with storage.engine.connect() as connection:
        for statement, parameters in statements:
            rows = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
            ).all()
            lines += ["", statement, f"-- parameters: {parameters!r}"]
            lines += [row[0] for row in rows]
    return [*lines, ""]


def percentile(values: Sequence[float], share: float) -> float:
    """Return the ``share`` percentile of ``values`` by linear interpolation between ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> str:
    return (
        f"n={len(values)}  p50 {percentile(values, 0.5):.1f} ms  "
        f"p95 {percentile(values, 0.95):.1f} ms  max {max(values):.1f} ms"
    )


def print_report(
    results: Results, load_seconds: float | None, database_url: str, data: DataSet
) -> None:
    print()
    print(f"{'search':<28}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'median total':>14}")
    for name, values in results.api.by_name.items():
        totals = results.api.totals[name]
        print(
            f"{name:<28}{len(values):>6}{percentile(values, 0.5):>9.1f}"
            f"{percentile(values, 0.95):>9.1f}{max(values):>9.1f}"
            f"{statistics.median(totals):>14,.0f}"
        )
    for name, reason in {**results.api.skipped, **results.page.skipped}.items():
        print(f"skipped {name}: {reason}")

    print()
    print(
        f"data: {data.members:,} members x {data.offers} offers, {data.days} days of history "
        f"at {data.history_per_day} versions per offer per day; "
        + (f"load {load_seconds:.1f} s" if load_seconds is not None else "reused database")
    )
    print(f"machine: {machine_facts(database_url)}")
    api = results.api.all()
    print(f"API  GET {RESOURCES_PATH}  {summary(api)}  {_goal(api, API_GOAL_MS)}")
    page = results.page.all()
    if page:
        print(f"page GET /  {summary(page)}  {_goal(page, PAGE_GOAL_MS)}")
    else:
        print("page GET /  not measured: " + results.page.skipped.get("GET /", "no requests"))


def _goal(values: Sequence[float], goal_ms: float) -> str:
    verdict = "met" if percentile(values, 0.95) < goal_ms else "NOT MET"
    return f"goal p95 < {goal_ms:.0f} ms: {verdict}"


def machine_facts(database_url: str) -> str:
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    postgres = row[0] if row is not None else "unknown"
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), PostgreSQL {postgres}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


if __name__ == "__main__":
    sys.exit(main())
