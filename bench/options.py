"""Argument types shared by the command lines of the benchmark scripts.

argparse puts ``argument --NAME:`` before the message of an ``ArgumentTypeError`` and exits
with status 2, so each message names the option and the rejected value.
"""

from __future__ import annotations

import argparse
import math


def whole_number(text: str) -> int:
    """Return ``text`` as an int of at least 1, or raise ``ArgumentTypeError``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """Return ``text`` as a finite number of seconds above 0, or raise ``ArgumentTypeError``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value
