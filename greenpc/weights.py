"""Versioned weight files (``.gpc``): safetensors arrays plus a JSON record, never pickle.

Layout: a safetensors file whose metadata holds ``format = "greenpc"``, ``format_version`` and ``record``,
a JSON object with the architecture, the problem (preset, fixed parameters, trained parameter ranges,
domain), the epsilon schedule, the training record and a SHA-256 checksum of the arrays.

``load`` never executes anything from the file: it reads the header itself with a bounded size, checks
the record, rebuilds the network skeleton from the architecture, and validates every array's name, shape,
dtype and values (finite) and the checksum before returning a ``Model``. ``save`` writes atomically.
"""
import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .model.architecture import Architecture

FORMAT = "greenpc"
VERSION = 1
SUPPORTED_VERSIONS = (1,)
SUFFIX = ".gpc"
MAX_HEADER_BYTES = 16 << 20  # far above any real header; a crafted length is refused before reading
RECORD_FIELDS = ("architecture", "problem", "training", "checksum")
PROBLEM_FIELDS = ("name", "params", "trained_params", "domain")


class WeightFileError(ValueError):
    """A weight file that cannot be used; the message names the file and what was expected."""


@dataclass
class Model:
    """A trained network: architecture, problem description, parameters (numpy) and record."""

    architecture: Architecture
    problem: dict
    params: dict  # nested dict of numpy arrays, as the network's skeleton
    record: dict
    path: str = ""

    @property
    def version(self):
        return self.record.get("format_version", VERSION)


def flatten(params, prefix=""):
    flat = {}
    for key, value in params.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict) or hasattr(value, "items"):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def unflatten(flat):
    nested = {}
    for name, value in flat.items():
        node = nested
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def checksum(flat):
    digest = hashlib.sha256()
    for name in sorted(flat):
        array = np.ascontiguousarray(flat[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def atomic_write(path, data: bytes):
    """Write ``data`` to ``path`` through a temporary file, fsync and rename: never a half file."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save(path, architecture, problem, params, training):
    """Write a weight file atomically. ``params`` is the nested parameter dict of the final model."""
    from safetensors.numpy import save as to_bytes

    flat = {k: np.ascontiguousarray(v) for k, v in flatten(params).items()}
    record = {"architecture": architecture.to_dict(), "problem": problem, "training": training,
              "checksum": checksum(flat), "format_version": VERSION}
    metadata = {"format": FORMAT, "format_version": str(VERSION), "record": json.dumps(record)}
    atomic_write(path, to_bytes(flat, metadata=metadata))


def _fail(path, message):
    raise WeightFileError(f"weight file {path}: {message}")


def read_header(path):
    """The safetensors header (dict) of ``path``, read with a bounded length."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                _fail(path, f"is {size} bytes, too short for a safetensors file (expected a .gpc file)")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES or length > size - 8:
                _fail(path, f"declares a {length}-byte header but the file has {size} bytes "
                            "(not a safetensors file, or truncated)")
            text = handle.read(length)
    except FileNotFoundError:
        _fail(path, "does not exist")
    except IsADirectoryError:
        _fail(path, "is a directory, not a file")
    except PermissionError:
        _fail(path, "cannot be read (permission denied)")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        _fail(path, "has a header that is not JSON (not a safetensors file)")
    if not isinstance(header, dict):
        _fail(path, "has a header that is not a JSON object (not a safetensors file)")
    return header, 8 + length, size


def _record(path, header):
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict):
        _fail(path, "has no metadata (expected format 'greenpc')")
    if metadata.get("format") != FORMAT:
        _fail(path, f"has format {metadata.get('format')!r}, expected {FORMAT!r}")
    raw_version = metadata.get("format_version")
    try:
        version = int(raw_version)
    except (TypeError, ValueError):
        _fail(path, f"has format version {raw_version!r}, expected an integer")
    if version not in SUPPORTED_VERSIONS:
        _fail(path, f"has format version {version}; this greenpc reads versions "
                    f"{', '.join(map(str, SUPPORTED_VERSIONS))}")
    try:
        record = json.loads(metadata.get("record", ""))
    except (TypeError, json.JSONDecodeError):
        _fail(path, "has a record that is not valid JSON")
    if not isinstance(record, dict):
        _fail(path, "has a record that is not a JSON object")
    missing = [f for f in RECORD_FIELDS if f not in record]
    if missing:
        _fail(path, f"record lacks {', '.join(missing)}")
    problem = record["problem"]
    if not isinstance(problem, dict) or any(f not in problem for f in PROBLEM_FIELDS):
        _fail(path, f"record's problem must hold {', '.join(PROBLEM_FIELDS)}")
    try:
        architecture = Architecture.from_dict(record["architecture"])
    except (TypeError, ValueError) as err:
        _fail(path, f"has an invalid architecture: {err}")
    record["format_version"] = version
    return architecture, problem, record


@lru_cache(maxsize=16)
def _skeleton(architecture_json):
    """name -> (shape, dtype) of every array the architecture's final model has."""
    import jax

    from .model.network import final_params, init_params

    arch = Architecture.from_dict(json.loads(architecture_json))
    shapes = jax.eval_shape(lambda: final_params(arch, init_params(arch)))
    return {name: (tuple(a.shape), np.dtype(a.dtype).str) for name, a in flatten(shapes).items()}


def expected_arrays(architecture):
    return _skeleton(json.dumps(architecture.to_dict(), sort_keys=True))


def load(path):
    """Read and validate a weight file; a ``WeightFileError`` names the file and the defect."""
    path = os.fspath(path)
    header, data_start, size = read_header(path)
    architecture, problem, record = _record(path, header)
    expected = expected_arrays(architecture)
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    missing, unexpected = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
    if missing or unexpected:
        _fail(path, f"arrays do not match the architecture (missing {missing[:5]}, unexpected "
                    f"{unexpected[:5]})")
    dtypes = {"F32": "<f4", "F64": "<f8"}
    flat = {}
    with open(path, "rb") as handle:
        for name, entry in sorted(entries.items(), key=lambda item: _offsets(path, item)[0]):
            shape, dtype = expected[name]
            begin, end = _offsets(path, (name, entry))
            if dtypes.get(entry.get("dtype")) != dtype or tuple(entry.get("shape", ())) != shape:
                _fail(path, f"array {name!r} is {entry.get('dtype')} {entry.get('shape')}, expected "
                            f"{np.dtype(dtype).name} {list(shape)}")
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if end - begin != nbytes or data_start + end > size:
                _fail(path, f"array {name!r} has {end - begin} bytes at offset {begin}, expected "
                            f"{nbytes} within the file (truncated?)")
            handle.seek(data_start + begin)
            array = np.frombuffer(handle.read(nbytes), dtype=dtype).reshape(shape)
            if not np.all(np.isfinite(array)):
                _fail(path, f"array {name!r} holds NaN or Inf values")
            flat[name] = array
    if checksum(flat) != record["checksum"]:
        _fail(path, "checksum mismatch: the arrays were modified or corrupted")
    return Model(architecture, problem, unflatten(flat), record, path)


def _offsets(path, item):
    name, entry = item
    if not isinstance(entry, dict):
        _fail(path, f"header entry {name!r} is not an object")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(v, int) and v >= 0 for v in offsets) or offsets[1] < offsets[0]):
        _fail(path, f"array {name!r} has invalid data offsets {offsets!r}")
    return offsets
