"""Reading and writing safetensors files: atomic saves, validated loads, no pickle anywhere.

A file is an 8-byte little-endian header length, a JSON header (tensor dtypes, shapes
and byte offsets, and a ``__metadata__`` map of strings), then the raw tensor bytes.
"""
import json
import os
import struct
import tempfile

import numpy as np

from fastnn.errors import ModelFormatError

# A header larger than this is refused before it is read (safetensors uses the same cap).
MAX_HEADER_BYTES = 100 * 1024 * 1024


def save_tensors(path, tensors, metadata):
    """Write `tensors` (name -> ndarray) and `metadata` (str -> str) to `path` atomically.

    The bytes go to a temporary file in the same folder, which then replaces `path`
    in one rename: an interrupted save leaves any existing file untouched.
    """
    data = tensors_to_bytes(tensors, metadata)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file private; give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def tensors_to_bytes(tensors, metadata):
    """`tensors` (name -> ndarray) and `metadata` (str -> str) as safetensors bytes."""
    from safetensors.numpy import save

    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("metadata keys and values must be strings")
    return save({name: np.ascontiguousarray(t) for name, t in tensors.items()},
                metadata=dict(metadata))


def read_header(data):
    """The parsed JSON header of safetensors bytes; ModelFormatError on any problem."""
    if len(data) < 8:
        raise ModelFormatError(f"file too short for a safetensors header ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise ModelFormatError(f"header length {n} exceeds the file ({len(data)} bytes)")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ModelFormatError("header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ModelFormatError("__metadata__ must map strings to strings")
    return header


def load_tensors(path):
    """Read a safetensors file: ``(tensors, metadata)``; FileNotFoundError when there is
    none at `path`, ModelFormatError on any other problem.

    Parsing is done by the safetensors library, which checks dtypes, shapes and that
    the byte ranges tile the data exactly; nothing in the file is ever executed.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    return tensors_from_bytes(data)


def tensors_from_bytes(data):
    """`load_tensors` for safetensors bytes already in memory: ``(tensors, metadata)``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    data = bytes(data)
    header = read_header(data)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise ModelFormatError(f"malformed tensor data: {exc}") from None
    return tensors, dict(header.get("__metadata__", {}))


def metadata_json(metadata, key):
    """``json.loads(metadata[key])``, with ModelFormatError when missing or malformed."""
    if key not in metadata:
        raise ModelFormatError(f"metadata has no {key!r} entry")
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"metadata {key!r} is not valid JSON: {exc}") from None
