"""Child names and label values stay valid DNS labels; who last wrote a child is read right."""

from __future__ import annotations

import re

import pytest

from slipway.builders.meta import label_value, short_name, written_by_another

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("length", [1, 40, 62, 63, 64, 100, 253])
@pytest.mark.parametrize("limit", [40, 63])
def test_names_fit_and_stay_valid(length: int, limit: int) -> None:
    parent = ("a-b." * 100)[:length].strip("-.") or "a"
    parent = re.sub(r"\.", "x", parent)
    name = short_name(parent, "v1a2b3c4d", limit=limit)
    assert len(name) <= limit
    assert DNS_LABEL.match(name), name
    assert name.endswith("-v1a2b3c4d")


def test_short_names_are_kept_as_they_are() -> None:
    assert short_name("digits", "v12345678") == "digits-v12345678"
    assert label_value("digits") == "digits"


def test_long_parents_that_share_a_prefix_get_different_names() -> None:
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    assert short_name(a) != short_name(b)
    assert len(label_value(a)) <= 63


def _entry(manager: str, time: str, subresource: str | None = None) -> dict[str, str]:
    entry = {"manager": manager, "operation": "Apply", "time": time}
    return entry | ({"subresource": subresource} if subresource else {})


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([_entry("slipway", "2026-01-01T00:00:05Z")], False),
        # A controller reporting status is not a change to what the operator applied.
        (
            [
                _entry("slipway", "2026-01-01T00:00:05Z"),
                _entry("seldon", "2026-01-01T00:01:00Z", "status"),
            ],
            False,
        ),
        (
            [_entry("slipway", "2026-01-01T00:00:05Z"), _entry("kubectl", "2026-01-01T00:01:00Z")],
            True,
        ),
        # Another manager that wrote before the operator's last apply has been overruled.
        (
            [_entry("kubectl", "2026-01-01T00:00:01Z"), _entry("slipway", "2026-01-01T00:00:05Z")],
            False,
        ),
        # The same second cannot be ordered: it counts (a needless reconcile writes nothing).
        (
            [_entry("slipway", "2026-01-01T00:00:05Z"), _entry("kubectl", "2026-01-01T00:00:05Z")],
            True,
        ),
        ([_entry("kubectl", "2026-01-01T00:00:05Z")], True),
        ([], False),
    ],
)
def test_written_by_another(entries: list[dict[str, str]], expected: bool) -> None:
    assert written_by_another({"managedFields": entries}, "slipway") is expected
