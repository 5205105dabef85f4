"""A structure-aware mutator for safetensors files (with a byte-level fallback).

Most mutations parse the file into its JSON header (with the JSON held in metadata
strings parsed too) and the tensor bytes, change one thing that a reader must check
(a number, a string, a dtype, a shape, an offset, a key, nesting) and write a
well-formed file back, so that inputs reach the checks behind the header parser.
"""
import json
import random
import struct

INTERESTING = [0, 1, -1, 2, 3, 7, 255, 256, 65535, 65536, 1 << 22, (1 << 22) + 1, 1 << 31,
               1 << 32, 1 << 63, -(1 << 63), 10 ** 9, 10 ** 30, 0.5, -0.5, 1.7, 1e-300, 1e300,
               float("nan"), float("inf"), -float("inf"), "", "a", "relu", "prelu", "softmax",
               "float32", "float64", "F32", "F64", "BF16", "I64", "U16", "I32", "dense", "csr",
               "affine", "Dense", "Maxout", "BatchNormalization", None, True, False, [], {},
               [1], [0, 0], {"class_name": "Activation", "config": {}}]


def split(data):
    """(header, body) of safetensors bytes, with JSON metadata values parsed; or None."""
    if len(data) < 8:
        return None
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        return None
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__")
    if isinstance(meta, dict):
        for k, v in list(meta.items()):
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    meta[k] = {"__json__": json.loads(v)}
                except (ValueError, RecursionError):
                    pass
    return header, data[8 + n:]


def join(header, body):
    """Safetensors bytes from a header made by `split` (JSON metadata re-encoded)."""
    header = dict(header)
    meta = header.get("__metadata__")
    if isinstance(meta, dict):
        header["__metadata__"] = {k: (json.dumps(v["__json__"]) if isinstance(v, dict)
                                      and set(v) == {"__json__"} else v)
                                  for k, v in meta.items()}
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _slots(value, path=()):
    """Every (container, key) in a JSON value, depth first."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((value, k))
            out.extend(_slots(v))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((value, i))
            out.extend(_slots(v))
    return out


def _new_value(rng, old, pool):
    r = rng.random()
    if isinstance(old, bool) or old is None:
        return rng.choice(INTERESTING)
    if isinstance(old, (int, float)) and r < 0.5:
        return rng.choice([old + 1, old - 1, old * 2, -old, old // 2 if isinstance(old, int)
                           else old / 2, old * 1000])
    if r < 0.8:
        return rng.choice(INTERESTING)
    return rng.choice(pool) if pool else None


def mutate_structure(data, rng):
    """One structural change, or None when `data` does not parse."""
    parts = split(data)
    if parts is None:
        return None
    header, body = parts
    # most changes go to the metadata, which holds the most checks
    meta = header.get("__metadata__")
    slots = _slots(meta) if isinstance(meta, dict) and rng.random() < 0.7 else _slots(header)
    if not slots:
        return None
    container, key = rng.choice(slots)
    old = container[key]
    r = rng.random()
    if r < 0.55:
        container[key] = _new_value(rng, old, [c[k] for c, k in slots])
    elif r < 0.65:
        del container[key]
    elif r < 0.72 and isinstance(container, dict):
        container[rng.choice(["extra", "__metadata__", "classes", "layers.9.0", "0.W"])] = old
    elif r < 0.8 and isinstance(container, list):
        container.append(old)
    elif r < 0.82:
        deep = old
        for _ in range(rng.choice([10, 70, 500])):
            deep = [deep]
        container[key] = deep
    elif r < 0.95 and body:
        # change bytes of the tensor data (values, indices, offsets of CSR)
        body = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(body))
            body[i] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        body = bytes(body)
    else:
        body = body[:rng.randrange(len(body) + 1)] if rng.random() < 0.5 \
            else body + bytes(rng.choice([1, 4, 8, 64]))
    try:
        return join(header, body)
    except (ValueError, TypeError, RecursionError):
        return None


def custom_mutator(data, max_size, seed):
    """The atheris custom mutator: structural most of the time, else libFuzzer's."""
    import atheris

    rng = random.Random(seed)
    if rng.random() < 0.75:
        out = mutate_structure(data, rng)
        if out is not None and len(out) <= max_size:
            return out
    return atheris.Mutate(data, max_size)
