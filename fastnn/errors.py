"""Exceptions raised by fastnn."""


class ModelFormatError(ValueError):
    """A model or engine file is malformed, truncated, of an unknown version or hostile."""
