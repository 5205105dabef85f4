"""Checks of scalar arguments: real numbers in an interval, integers, choices.

Every public constructor validates its scalar arguments here, once, so that the same
argument gets the same rule and the same message everywhere. An interval is given by
`low` and `high` (None: unbounded on that side) and `closed`, which says which ends
belong to it: ``"both"`` ([low, high]), ``"left"`` ([low, high)), ``"right"``
((low, high]) or ``"neither"`` ((low, high)). NaN is never accepted; infinities only
with ``finite=False``.
"""
import math
import numbers

__all__ = ["check_real", "check_int", "check_choice"]

_CLOSED = {"both": (True, True), "left": (True, False), "right": (False, True),
           "neither": (False, False)}


def _describe(low, high, closed, kind):
    """``"a non-negative number"``, ``"an integer in [1, 4)"``..., for error messages."""
    low_in, high_in = _CLOSED[closed]
    if high is None and low == 0:
        return f"a {'non-negative' if low_in else 'positive'} {kind}"
    if high is None and low is None:
        return f"a {kind}"
    article = "an" if kind[0] in "aeiou" else "a"
    if high is None:
        return f"{article} {kind} {'>=' if low_in else '>'} {low:g}"
    if low is None:
        return f"{article} {kind} {'<=' if high_in else '<'} {high:g}"
    return (f"{article} {kind} in {'[' if low_in else '('}{low:g}, {high:g}"
            f"{']' if high_in else ')'}")


def _inside(value, low, high, closed):
    low_in, high_in = _CLOSED[closed]
    if low is not None and not (value >= low if low_in else value > low):
        return False
    return high is None or (value <= high if high_in else value < high)


def check_real(x, name, low=None, high=None, closed="both", finite=True):
    """`x` as a float, checked to lie in the interval from `low` to `high`.

    Parameters
    ----------
    x : real number
    name : str
        The argument's name, for the error message.
    low, high : float or None
        The ends of the interval; None leaves that side unbounded.
    closed : {"both", "left", "right", "neither"}
        Which ends belong to the interval.
    finite : bool
        Reject infinities (NaN is always rejected).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        When `x` is not a real number (bools are not numbers here).
    ValueError
        When `x` is NaN, infinite (with `finite`) or outside the interval.
    """
    if closed not in _CLOSED:
        raise ValueError(f"closed must be one of {', '.join(_CLOSED)}; got {closed!r}")
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {x!r}")
    value = float(x)
    if math.isnan(value) or (finite and math.isinf(value)) or not _inside(value, low, high,
                                                                          closed):
        kind = "finite number" if finite else "number"
        raise ValueError(f"{name} must be {_describe(low, high, closed, kind)}, got {value}")
    return value


def check_int(x, name, low=None, high=None, closed="both"):
    """`x` as an int, checked to lie in the interval from `low` to `high`.

    A value that is not an integer (a float such as 2.0 included, bools too) is a wrong
    value of an integer argument: ValueError, like a value out of range.

    Parameters
    ----------
    x : int
    name : str
    low, high : int or None
    closed : {"both", "left", "right", "neither"}

    Returns
    -------
    int
    """
    if closed not in _CLOSED:
        raise ValueError(f"closed must be one of {', '.join(_CLOSED)}; got {closed!r}")
    if isinstance(x, bool) or not isinstance(x, numbers.Integral) \
            or not _inside(int(x), low, high, closed):
        raise ValueError(f"{name} must be {_describe(low, high, closed, 'integer')}, "
                         f"got {x!r}")
    return int(x)


def check_choice(x, name, choices):
    """`x` unless it is not one of `choices` (ValueError listing them, in their order)."""
    if x not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {x!r}")
    return x
