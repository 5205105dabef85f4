"""Argument types of the command line: numbers parsed and range-checked by argparse."""
import argparse

import numpy as np


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def int_list(allow_empty):
    def parse(text):
        parts = [p.strip() for p in text.split(",")]
        if parts == [""] and allow_empty:
            return []
        try:
            return [positive_int(p) for p in parts]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive integers, got {text!r}") from None
    return parse


def fraction(low_open=False, high_open=True):
    """A float in [0, 1), or (0, 1), [0, 1], (0, 1], from the command line."""
    interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value > 0 if low_open else value >= 0
        below = value < 1 if high_open else value <= 1
        if not (above and below):
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value
    return parse


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value
