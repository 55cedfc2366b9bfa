"""Whether this replica leads, read from kopf's peering record as kopf itself decides it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from slipway.handlers.resync import leads

NOW = datetime.datetime(2026, 11, 27, 12, 0, 0, tzinfo=datetime.UTC)


def peer(priority: int, seconds_ago: float, lifetime: int = 60) -> dict[str, Any]:
    seen = NOW - datetime.timedelta(seconds=seconds_ago)
    return {"priority": priority, "lastseen": seen.isoformat(), "lifetime": lifetime}


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        (None, True),  # no record: kopf runs without peering
        ({"me": peer(10, 5)}, True),
        ({"me": peer(10, 5), "other": peer(5, 5)}, True),
        ({"me": peer(10, 5), "other": peer(20, 5)}, False),
        ({"me": peer(10, 5), "other": peer(20, 90)}, True),  # the higher one stopped renewing
        ({"me": peer(10, 5), "other": peer(10, 5)}, False),  # a tie pauses both, as in kopf
        ({"other": peer(20, 5)}, False),  # not yet in the record ourselves
    ],
)
def test_leads(peers: dict[str, Any] | None, expected: bool) -> None:
    record = None if peers is None else {"status": peers}
    assert leads(record, 10, NOW) is expected


def test_naive_keep_alive_times_are_utc() -> None:
    naive = (NOW - datetime.timedelta(seconds=5)).replace(tzinfo=None).isoformat()
    record = {"status": {"other": {"priority": 20, "lastseen": naive, "lifetime": 60}}}
    assert leads(record, 10, NOW) is False
