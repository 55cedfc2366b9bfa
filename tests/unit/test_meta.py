"""Child names and label values stay valid DNS labels for any valid parent name."""

from __future__ import annotations

import re

import pytest

from slipway.builders.meta import label_value, short_name

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
