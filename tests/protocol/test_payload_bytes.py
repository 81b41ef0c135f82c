"""Payload bytes of the faster serialisation equal those of json.dumps and isoformat(timespec).

The aggregator stores ``Offer.to_payload()``, so ``format_time`` and ``dump_standard_json`` must
write exactly what ``datetime.isoformat(timespec=...)`` and ``json.dumps`` wrote before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kooperant.protocol.offer import dump_standard_json, format_time

TIMESPECS = ("auto", "hours", "minutes", "seconds", "milliseconds", "microseconds")
offsets = st.one_of(
    st.just(UTC),
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)).map(
        lambda offset: timezone(offset)
    ),
)
aware_times = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offsets,
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500)
@given(value=aware_times, timespec=st.sampled_from(TIMESPECS))
def test_format_time_equals_isoformat(value: datetime, timespec: str) -> None:
    assert format_time(value, timespec) == value.isoformat(timespec=timespec)


def test_format_time_default_drops_microseconds() -> None:
    value = datetime(2026, 12, 7, 6, 0, 0, 250, tzinfo=UTC)

    assert format_time(value) == "2026-12-07T06:00:00+00:00"


@settings(max_examples=300)
@given(data=st.dictionaries(st.text(), json_values, max_size=8))
def test_dump_standard_json_equals_json_dumps(data: dict[str, Any]) -> None:
    expected = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    assert dump_standard_json(data, "offer") == expected.encode()
