"""Reading and writing safetensors files: atomic saves, validated loads, no pickle anywhere.

A file is an 8-byte little-endian header length, a JSON header (tensor dtypes, shapes
and byte offsets, and a ``__metadata__`` map of strings), then the raw tensor bytes.

Reading checks the whole header before it makes any array: known dtypes, shapes of
non-negative integers, byte ranges that tile the data exactly; the tensors are then
read-only views of the bytes, so reading N bytes costs memory and time proportional
to N. Every problem is a `fastnn.ModelFormatError`.

Saving never leaves a partial or temporary file behind: on Linux the bytes go to an
unnamed file (``O_TMPFILE``) that is linked into place once complete; elsewhere (or on
a file system without ``O_TMPFILE``) to ``.<name>.<pid>.<random>.fastnn-tmp`` beside
the target, which a later save of the same target removes once its writer is gone.
"""
import errno
import json
import os
import re
import secrets
import struct

import numpy as np

from fastnn.errors import ModelFormatError

__all__ = ["save_tensors", "tensors_to_bytes", "write_atomic", "load_tensors", "read_file",
           "tensors_from_bytes",
           "read_header", "metadata_json", "parse_json", "check_metadata",
           "MAX_HEADER_BYTES", "MAX_DEPTH", "DTYPES"]

# A header larger than this is refused before it is read (safetensors uses the same cap).
MAX_HEADER_BYTES = 100 * 1024 * 1024
# JSON deeper than this (in the header or a metadata value) is refused.
MAX_DEPTH = 64
# The safetensors dtypes that numpy holds; any other (BF16, F8_*) is refused.
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U64": np.uint64,
          "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}
TEMP_SUFFIX = ".fastnn-tmp"


# -- saving ------------------------------------------------------------------------------
def save_tensors(path, tensors, metadata):
    """Write `tensors` (name -> ndarray) and `metadata` (str -> str) to `path` atomically.

    A save interrupted at any moment (even by SIGKILL or power loss after the data
    reached the disk) leaves the old file or the new one, and no temporary file.
    """
    write_atomic(path, tensors_to_bytes(tensors, metadata))


def tensors_to_bytes(tensors, metadata):
    """`tensors` (name -> ndarray) and `metadata` (str -> str) as safetensors bytes."""
    from safetensors.numpy import save

    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("metadata keys and values must be strings")
    return save({name: np.ascontiguousarray(t) for name, t in tensors.items()},
                metadata=dict(metadata))


def write_atomic(path, data):
    """Replace `path` by `data` in one rename, leaving no temporary file (see the module)."""
    path = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path}: the folder {folder} does not exist")
    _remove_stale_temps(folder, base)
    dir_fd = os.open(folder, os.O_RDONLY) if os.name == "posix" else None
    try:
        if not _write_unnamed(dir_fd, base, data):
            _write_named(folder, base, data)
        if dir_fd is not None:
            os.fsync(dir_fd)  # makes the rename durable
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _temp_name(base):
    return f".{base}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _write_unnamed(dir_fd, base, data):
    """Write `data` to an unnamed file in the folder `dir_fd` and rename it onto `base`.

    The file gets a name only once complete, and is renamed at once: only a kill in
    between leaves a (recognisable) temporary file. False where O_TMPFILE or linking
    from /proc/self/fd is unsupported; nothing is left behind then.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or dir_fd is None:
        return False
    try:
        fd = os.open(".", flag | os.O_WRONLY, 0o666, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return False
        raise
    try:
        _write_all(fd, data)
        tmp = _temp_name(base)
        try:
            os.link(f"/proc/self/fd/{fd}", tmp, dst_dir_fd=dir_fd, follow_symlinks=True)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP):
                return False
            raise
    finally:
        os.close(fd)
    try:
        os.replace(tmp, base, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    return True


def _write_named(folder, base, data):
    """Write `data` to a recognisable temporary file beside `base`, then rename it."""
    tmp = os.path.join(folder, _temp_name(base))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(folder, base))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _remove_stale_temps(folder, base):
    """Remove temporary files of earlier saves of `base` whose writer no longer runs."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX))
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def _alive(pid):
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# -- reading -----------------------------------------------------------------------------
def parse_json(text, what):
    """json.loads with every parsing failure (deep nesting included) as ModelFormatError."""
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        raise ModelFormatError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ModelFormatError(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelFormatError(f"{what} nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def read_header(data):
    """The parsed JSON header of safetensors bytes; ModelFormatError on any problem.

    Checks the header alone: a JSON object of tensor entries (known dtype, shape of
    non-negative integers, ``data_offsets`` that tile the data exactly, in order) and
    an optional ``__metadata__`` of strings.
    """
    if len(data) < 8:
        raise ModelFormatError(f"file too short for a safetensors header ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise ModelFormatError(f"header length {n} exceeds the file ({len(data)} bytes)")
    try:
        text = bytes(data[8:8 + n]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"header is not UTF-8: {exc}") from None
    header = parse_json(text, "header")
    if not isinstance(header, dict):
        raise ModelFormatError("header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ModelFormatError("__metadata__ must map strings to strings")
    size = len(data) - 8 - n
    spans = sorted(_tensor_span(name, entry, size) for name, entry in header.items()
                   if name != "__metadata__")
    end = 0
    for begin, stop, name in spans:
        if begin != end:
            raise ModelFormatError(f"tensor {name!r} starts at byte {begin}, expected {end}: "
                                   f"tensor data must be contiguous")
        end = stop
    if end != size:
        raise ModelFormatError(f"the tensors cover {end} bytes of the {size} after the header")
    return header


def _tensor_span(name, entry, size):
    """(begin, end, name) of a tensor entry, checked against its dtype and shape."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelFormatError(f"tensor {name!r}: entry must have exactly dtype, shape and "
                               f"data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ModelFormatError(f"tensor {name!r}: unsupported dtype {dtype!r}; supported: "
                               f"{', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ModelFormatError(f"tensor {name!r}: shape must be a list of non-negative "
                               f"integers, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))
            and offsets[0] <= offsets[1] <= size):
        raise ModelFormatError(f"tensor {name!r}: data_offsets {offsets!r} outside the "
                               f"{size} data bytes")
    count = 1
    for d in shape:
        count *= d
    if count * np.dtype(DTYPES[dtype]).itemsize != offsets[1] - offsets[0]:
        raise ModelFormatError(f"tensor {name!r}: {dtype} {shape} needs "
                               f"{count * np.dtype(DTYPES[dtype]).itemsize} bytes, the file "
                               f"gives {offsets[1] - offsets[0]}")
    return offsets[0], offsets[1], name


def _is_count(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def tensors_from_bytes(data):
    """Tensors and metadata from safetensors bytes: ``(tensors, metadata)``.

    The tensors are read-only views of `data` (a bytes-like object); nothing in it is
    ever executed. Raises ModelFormatError on any problem (see `read_header`).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    header = read_header(data)
    start = 8 + struct.unpack("<Q", bytes(data[:8]))[0]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype = np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<")
        t = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize,
                          offset=start + begin)
        tensors[name] = t.reshape(entry["shape"]).astype(dtype.newbyteorder("="), copy=False)
    return tensors, dict(header.get("__metadata__", {}))


def read_file(path):
    """The bytes of the file at `path`: FileNotFoundError when it does not exist,
    ModelFormatError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_tensors(path):
    """`tensors_from_bytes` of the file at `path`; FileNotFoundError when it does not exist."""
    return tensors_from_bytes(read_file(path))


def metadata_json(metadata, key):
    """``json.loads(metadata[key])``, with ModelFormatError when missing or malformed."""
    if key not in metadata:
        raise ModelFormatError(f"metadata has no {key!r} entry")
    return parse_json(metadata[key], f"metadata {key!r}")


def check_metadata(metadata, table, what):
    """Each metadata entry checked by its row of `table`; ``{key: parsed value}``.

    `table` maps every key the format knows to ``(required, check)``, where
    ``check(text)`` returns the parsed value or raises ModelFormatError. A key missing
    from the table, or a required key missing from the file, is a ModelFormatError:
    a format grows by adding a row, and nothing in a file goes unchecked.
    """
    unknown = sorted(set(metadata) - set(table))
    if unknown:
        raise ModelFormatError(f"unknown metadata {unknown[:5]}; a {what} file has "
                               f"{', '.join(table)}")
    fields = {}
    for key, (required, check) in table.items():
        if key in metadata:
            fields[key] = check(metadata[key])
        elif required:
            raise ModelFormatError(f"metadata has no {key!r} entry")
    return fields
