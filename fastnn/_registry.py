"""Name registries: one mechanism for every family (activations, initializers, optimizers...).

A family is a dict from name to class. ``get`` accepts a name, an instance, or a
config dict ``{"class_name": ..., "config": {...}}`` as written by ``serialize``.
"""


class Configurable:
    """Base of every registered family: an instance is rebuilt from its `get_config`."""

    def get_config(self):
        """The constructor arguments, as a JSON-serialisable dict."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def serialize(obj):
    """``{"class_name": ..., "config": obj.get_config()}``, the inverse of `get`."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def get(identifier, table, family, base):
    """Resolve `identifier` to an instance of `base` through `table`.

    Parameters
    ----------
    identifier : str, instance of `base`, or dict
        A registered name (case-insensitive), an instance (returned as is), or a
        config dict ``{"class_name": name, "config": kwargs}``.
    table : dict
        Lower-case name -> class (or zero-argument factory).
    family : str
        Used in error messages, e.g. ``"initializer"``.
    base : type
        The family's base class.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    TypeError
        For an identifier of another type.
    """
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"a {family} config needs a 'class_name' key, got {identifier!r}")
        cls = _lookup(identifier["class_name"], table, family)
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str):
        return _lookup(identifier, table, family)()
    raise TypeError(f"cannot interpret {identifier!r} as a {family}: "
                    f"give a name, a config dict or a {base.__name__}")


def _lookup(name, table, family):
    key = name.lower() if isinstance(name, str) else name
    try:
        return table[key]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {family} {name!r}; valid names: "
                         f"{', '.join(sorted(table))}") from None
