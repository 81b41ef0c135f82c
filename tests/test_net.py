"""Tests of the shared network helpers."""

from __future__ import annotations

import pytest

from kooperant.net import mask_url_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1883"),
        ("mqtt://user:secretpw@127.0.0.1:99999", "mqtt://user:***@127.0.0.1:99999"),
        ("mqtt://secretpw@127.0.0.1", "mqtt://***@127.0.0.1"),
        ("mqtt://user:secret@pw@127.0.0.1", "mqtt://user:***@127.0.0.1"),
        ("mqtt://user:secret/pw@127.0.0.1", "mqtt://user:***@127.0.0.1"),
        ("user:secretpw@127.0.0.1:1883", "user:***@127.0.0.1:1883"),
        ("opc.tcp://[::1", "opc.tcp://[::1"),
        ("", ""),
    ],
)
def test_mask_url_credentials_cases(url: str, shown: str) -> None:
    assert mask_url_credentials(url) == shown
