"""Versioned weight files (``.gpc``): safetensors arrays plus a JSON record, never pickle.

Layout: a safetensors file whose metadata holds ``format = "greenpc"``, ``format_version`` and ``record``,
a JSON object with the architecture, the problem (preset, fixed parameters, trained parameter ranges,
domain), the epsilon schedule, the training record and a SHA-256 checksum of the arrays.

``load`` never executes anything from the file (no pickle, no eval; JSON and raw little-endian floats
only): it reads the header itself with a bounded size, checks every field of the record (types, ranges,
a known problem), rebuilds the network skeleton from the bounded architecture, and validates every
array's name, shape, dtype and values (finite) and the checksum before returning a ``Model``. Any defect
is a ``WeightFileError`` naming the file and what was expected. ``save`` writes atomically.
"""
import hashlib
import json
import math
import os
import stat
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
DTYPES = {"F32": "<f4", "F64": "<f8"}
#: bounds of the architecture's sizes, far above any model greenpc trains: a crafted record must not
#: make the skeleton's construction loop or allocate without bound
ARCHITECTURE_LIMITS = {"dim": (1, 3), "n_features": (0, 64), "depth": (1, 64), "far_width": (1, 4096),
                       "aux_width": (1, 1024), "aux_depth": (1, 64), "subdomains": (1, 1024)}
MAX_STAGES = 16
MAX_WIDTH = 4096


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
        array = np.asarray(flat[name], order="C")  # keeps 0-d arrays 0-d
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def atomic_write(path, data: bytes):
    """Write ``data`` to ``path`` through a temporary file, fsync and rename: never a half file.

    A crash at any moment leaves either the old file or the new one at ``path`` (and at worst a
    ``.NAME.tmp-*`` file beside it); the new file gets the old one's permissions, or the umask's.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            os.fchmod(out.fileno(), _file_mode(path))
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


def _file_mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save(path, architecture, problem, params, training):
    """Write a weight file atomically. ``params`` is the nested parameter dict of the final model.

    Refuses (before writing anything) NaN or Inf values, which ``load`` would refuse: a diverged run
    never replaces a good file.
    """
    from safetensors.numpy import save as to_bytes

    flat = {k: np.asarray(v, order="C") for k, v in flatten(params).items()}
    for name, array in flat.items():
        if not np.all(np.isfinite(array)):
            raise WeightFileError(f"weight file {path}: not written, array {name!r} holds NaN or Inf "
                                  "values")
    record = {"architecture": architecture.to_dict(), "problem": problem, "training": training,
              "checksum": checksum(flat), "format_version": VERSION}
    metadata = {"format": FORMAT, "format_version": str(VERSION), "record": json.dumps(record)}
    atomic_write(path, to_bytes(flat, metadata=metadata))


def _fail(path, message):
    raise WeightFileError(f"weight file {path}: {message}")


def _json(path, text, what):
    """``json.loads`` where any failure (syntax, nesting too deep, huge integer) is a WeightFileError."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):
        _fail(path, f"has {what} that is not valid JSON")


def read_header(path):
    """The safetensors header (dict) of ``path``, its end and the file size, read with a bounded length."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        _fail(path, "does not exist (expected a .gpc weight file)")
    except OSError as err:
        _fail(path, f"cannot be read: {err.strerror or err}")
    if stat.S_ISDIR(info.st_mode):
        _fail(path, "is a directory, not a .gpc weight file")
    if not stat.S_ISREG(info.st_mode):
        _fail(path, "is not a regular file (expected a .gpc weight file)")
    size = info.st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                _fail(path, f"is {size} bytes, too short for a safetensors file (expected a .gpc "
                            "weight file: an 8-byte header length, a JSON header and the arrays)")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES or length > size - 8:
                _fail(path, f"declares a {length}-byte header but the file has {size} bytes and "
                            f"headers are at most {MAX_HEADER_BYTES} bytes (not a safetensors file, "
                            "or truncated)")
            text = handle.read(length)
    except OSError as err:
        _fail(path, f"cannot be read: {err.strerror or err}")
    if len(text) != length:
        _fail(path, f"ended after {8 + len(text)} bytes while reading its {length}-byte header "
                    "(truncated while being read?)")
    try:
        text = text.decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, "has a header that is not UTF-8 JSON (not a safetensors file)")
    header = _json(path, text, "a header")
    if not isinstance(header, dict):
        _fail(path, "has a header that is not a JSON object (not a safetensors file)")
    return header, 8 + length, size


def _record(path, header):
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict):
        _fail(path, f"has no greenpc metadata (expected a safetensors file with format {FORMAT!r}; "
                    "not a greenpc weight file)")
    name = metadata.get("format")
    if name is None:
        _fail(path, f"lacks the format name (expected format {FORMAT!r}; not a greenpc weight file)")
    if name != FORMAT:
        _fail(path, f"has format {name!r}, expected {FORMAT!r}")
    supported = ", ".join(map(str, SUPPORTED_VERSIONS))
    raw_version = metadata.get("format_version")
    if raw_version is None:
        _fail(path, f"lacks format_version (this greenpc reads versions {supported})")
    if not (isinstance(raw_version, str) and raw_version.isascii() and raw_version.isdigit()
            and len(raw_version) < 10):
        _fail(path, f"has format version {raw_version!r}, expected an integer (this greenpc reads "
                    f"versions {supported})")
    version = int(raw_version)
    if version not in SUPPORTED_VERSIONS:
        _fail(path, f"has format version {version}; this greenpc reads versions {supported}")
    text = metadata.get("record")
    if text is None:
        _fail(path, f"lacks the record (a JSON object with {', '.join(RECORD_FIELDS)})")
    if not isinstance(text, str):
        _fail(path, "has a record that is not valid JSON (expected a JSON string)")
    record = _json(path, text, "a record")
    if not isinstance(record, dict):
        _fail(path, "has a record that is not a JSON object")
    missing = [f for f in RECORD_FIELDS if f not in record]
    if missing:
        _fail(path, f"record lacks {', '.join(missing)} (expected {', '.join(RECORD_FIELDS)})")
    checksum_text = record["checksum"]
    if not (isinstance(checksum_text, str) and len(checksum_text) == 64
            and all(c in "0123456789abcdef" for c in checksum_text)):
        _fail(path, "has a checksum that is not a SHA-256 hex digest")
    if not isinstance(record["training"], dict):
        _fail(path, "has a training record that is not a JSON object")
    architecture = _architecture(path, record["architecture"])
    problem = _problem(path, record["problem"], architecture)
    record["format_version"] = version
    return architecture, problem, record


def _is_int(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _architecture(path, spec):
    """The architecture, with every size checked against ARCHITECTURE_LIMITS before the skeleton is
    built (a crafted depth or width must not make the reader loop or allocate without bound)."""
    if not isinstance(spec, dict):
        _fail(path, "has an architecture that is not a JSON object")
    for key, (low, high) in ARCHITECTURE_LIMITS.items():
        if key in spec and not _is_int(spec[key], low, high):
            _fail(path, f"has architecture {key} {spec[key]!r}, expected an integer in [{low}, {high}]")
    for key in ("epsilons", "widths", "alpha0"):
        values = spec.get(key)
        if not (isinstance(values, list) and 1 <= len(values) <= MAX_STAGES):
            _fail(path, f"has architecture {key} {values!r}, expected a list of 1 to {MAX_STAGES} "
                        "numbers")
        valid = (lambda v: _is_int(v, 1, MAX_WIDTH)) if key == "widths" else _is_number
        if not all(valid(v) for v in values):
            expected = f"integers in [1, {MAX_WIDTH}]" if key == "widths" else "finite numbers"
            _fail(path, f"has architecture {key} {values!r}, expected {expected}")
    try:
        return Architecture.from_dict(spec)
    except (TypeError, ValueError) as err:
        _fail(path, f"has an invalid architecture: {err}")


def _problem(path, problem, architecture):
    """The problem record: a known preset, numeric parameters and ranges the network takes as its
    inputs, a domain of the network's dimension."""
    from . import problems

    if not isinstance(problem, dict) or any(f not in problem for f in PROBLEM_FIELDS):
        _fail(path, f"record's problem must be an object holding {', '.join(PROBLEM_FIELDS)}")
    name, dim = problem["name"], architecture.dim
    if not isinstance(name, str) or name not in problems.PRESETS:
        _fail(path, f"is for problem {name!r}, which this greenpc does not know (known: "
                    f"{', '.join(problems.names())})")
    params = problem["params"]
    if not (isinstance(params, dict) and all(_is_number(v) for v in params.values())):
        _fail(path, f"has problem params {params!r}, expected an object of finite numbers")
    trained = problem["trained_params"]
    features = problems.get(name).param_features
    if not isinstance(trained, dict):
        _fail(path, f"has trained_params {trained!r}, expected an object NAME: {{low, high, period}}")
    for key, spec in trained.items():
        if key not in features:
            _fail(path, f"has trained parameter {key!r}, which {name} does not take as a network input")
        if not (isinstance(spec, dict) and _is_number(spec.get("low")) and _is_number(spec.get("high"))
                and spec["low"] < spec["high"]
                and (spec.get("period") is None or _is_number(spec["period"]) and spec["period"] > 0)):
            _fail(path, f"has trained parameter range {key}={spec!r}, expected {{low < high, period "
                        "null or > 0}}")
    preset = problems.get(name)
    n_features = len(preset.features({**preset.params, **dict.fromkeys(trained, 0.0)})) if trained else 0
    if architecture.n_features != n_features:
        _fail(path, f"has a network with {architecture.n_features} parameter inputs, but trained "
                    f"parameters {sorted(trained)} of {name} give {n_features}")
    domain = problem["domain"]
    if not (isinstance(domain, list) and len(domain) == 2
            and all(isinstance(c, list) and len(c) == dim and all(_is_number(v) for v in c)
                    for c in domain)
            and all(lo < hi for lo, hi in zip(*domain))):
        _fail(path, f"has domain {domain!r}, expected [[low] * {dim}, [high] * {dim}] with low < high")
    if "modes" in problem:
        _check_modes(path, problem, preset)
    if "free_space" in problem:
        _check_free_space(path, problem, preset)
    return problem


def _check_free_space(path, problem, preset):
    """The optional split-off free-space kernel (``problems.freespace``): a 2D preset with a constant
    diffusion tensor and no convection, and a positive mollifier width."""
    from .problems.freespace import check_free_space

    record = problem["free_space"]
    if not (isinstance(record, dict) and set(record) == {"epsilon"} and _is_number(record["epsilon"])
            and 0 < record["epsilon"] < 1):
        _fail(path, f"has free_space {record!r}, expected {{epsilon in (0, 1)}}")
    try:
        check_free_space(preset, problem["params"])
    except ValueError as err:
        _fail(path, f"has a split-off free-space part, but {err}")


def _check_modes(path, problem, preset):
    """The optional split-off resonant modes (``problems.modes``): a -lap - k2 n^2 preset, a positive
    window width and a finite largest eigenvalue."""
    from .problems.modes import WINDOWS, check_resonant

    modes = problem["modes"]
    if not (isinstance(modes, dict) and {"width", "max_eigenvalue"} <= set(modes)
            <= {"width", "max_eigenvalue", "window"}
            and all(_is_number(modes[k]) for k in ("width", "max_eigenvalue")) and modes["width"] > 0
            and 0 < modes["max_eigenvalue"] < 1e7 and modes.get("window", "symmetric") in WINDOWS):
        _fail(path, f"has modes {modes!r}, expected {{width > 0, max_eigenvalue in (0, 1e7)"
                    f"[, window in {WINDOWS}]}}")
    try:
        check_resonant(preset, problem["params"])
    except ValueError as err:
        _fail(path, f"has split-off modes, but {err}")


@lru_cache(maxsize=16)
def _skeleton(architecture_json):
    """name -> shape of every array the architecture's final model has (from shapes alone: nothing is
    allocated, so a crafted size costs nothing)."""
    import jax

    from .model.network import final_params, init_params

    arch = Architecture.from_dict(json.loads(architecture_json))
    shapes = jax.eval_shape(lambda: final_params(arch, init_params(arch)))
    return {name: tuple(a.shape) for name, a in flatten(shapes).items()}


def expected_arrays(architecture):
    """name -> shape of every array a weight file of ``architecture`` holds (float32 or float64, one
    dtype for all: the trainer writes float32; a network saved with JAX's x64 mode on is float64)."""
    return _skeleton(json.dumps(architecture.to_dict(), sort_keys=True))


def _entry(path, name, entry):
    """(dtype, shape, begin, end) of a header entry, each checked for type."""
    if not isinstance(entry, dict):
        _fail(path, f"header entry {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or not (isinstance(shape, list)
                                          and all(_is_int(v, 0, 1 << 62) for v in shape)):
        _fail(path, f"array {name!r} has dtype {dtype!r} and shape {shape!r}, expected a dtype name "
                    "and a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(v, 0, 1 << 62) for v in offsets)
            and offsets[0] <= offsets[1]):
        _fail(path, f"array {name!r} has invalid data offsets {offsets!r}")
    return dtype, tuple(shape), offsets[0], offsets[1]


def load(path):
    """Read and validate a weight file; a ``WeightFileError`` names the file and the defect."""
    path = os.fspath(path)
    header, data_start, size = read_header(path)
    architecture, problem, record = _record(path, header)
    expected = expected_arrays(architecture)
    needed = sum(int(np.prod(shape, dtype=np.int64)) for shape in expected.values()) * 4
    if data_start + needed > size:
        _fail(path, f"is {size} bytes but its architecture needs {needed} bytes of float32 arrays after "
                    f"the {data_start}-byte header (truncated?)")
    entries = {name: _entry(path, name, entry) for name, entry in header.items()
               if name != "__metadata__"}
    missing, unexpected = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
    if missing or unexpected:
        _fail(path, f"arrays do not match the architecture (missing {missing[:5]}, unexpected "
                    f"{unexpected[:5]})")
    order = sorted(entries, key=lambda name: (entries[name][2], name))
    first = order[0] if order else None
    for name in order:
        dtype_name, shape = entries[name][:2]
        if dtype_name not in DTYPES:
            _fail(path, f"array {name!r} is {dtype_name} {list(shape)}, expected float32 or float64 "
                        f"{list(expected[name])}")
        if dtype_name != entries[first][0]:
            _fail(path, f"array {name!r} is {dtype_name} but {first!r} is {entries[first][0]} "
                        "(expected one float dtype for all arrays)")
    wrong = [f"{name!r} is {entries[name][0]} {list(entries[name][1])}, expected {list(expected[name])}"
             for name in order if entries[name][1] != expected[name]]
    if wrong:
        _fail(path, f"{len(wrong)} array(s) do not have the architecture's shapes: "
                    + "; ".join(wrong[:5]))
    flat = {}
    with open(path, "rb") as handle:
        for name in order:
            dtype_name, shape, begin, end = entries[name]
            dtype = DTYPES[dtype_name]
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if end - begin != nbytes or data_start + end > size:
                _fail(path, f"array {name!r} has {end - begin} bytes at offset {begin}, expected "
                            f"{nbytes} within the file's {size - data_start} data bytes (truncated?)")
            handle.seek(data_start + begin)
            data = handle.read(nbytes)
            if len(data) != nbytes:
                _fail(path, f"ended while reading array {name!r} (truncated while being read?)")
            array = np.frombuffer(data, dtype=dtype).reshape(shape)
            if not np.all(np.isfinite(array)):
                bad = int(np.count_nonzero(~np.isfinite(array)))
                _fail(path, f"array {name!r} holds NaN or Inf values ({bad} of {array.size} entries)")
            flat[name] = array
    if checksum(flat) != record["checksum"]:
        _fail(path, "checksum mismatch: the arrays were modified or corrupted")
    return Model(architecture, problem, unflatten(flat), record, path)
