"""Bad weight files: every defect is a WeightFileError naming the file and what was expected.

Valid files come from an untrained tiny network (tests/scripts/fault_models.py); each case breaks one
thing. A property-based test (hypothesis) mutates valid files at random and checks that every outcome
is a consistent load or a WeightFileError, never another exception, a crash or a hang.
"""
import builtins
import faulthandler
import json
import os
import pickle
import sys
import tempfile
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenpc import weights

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
import fault_models  # noqa: E402

HUGE = 1 << 63


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """The bytes of a valid weight file."""
    path = tmp_path_factory.mktemp("valid") / "tiny.gpc"
    fault_models.write(path)
    weights.load(path)
    return path.read_bytes()


def split(raw):
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def join(header, data, length=None):
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


def edit_header(raw, change):
    header, data = split(raw)
    change(header)
    return join(header, data)


def edit_record(raw, change):
    def apply(header):
        record = json.loads(header["__metadata__"]["record"])
        change(record)
        header["__metadata__"]["record"] = json.dumps(record)
    return edit_header(raw, apply)


def edit_array(raw, name, change):
    """Replace the values of one array (float32) and fix the checksum, so only ``change`` is wrong."""
    header, data = split(raw)
    data = bytearray(data)
    begin, end = header[name]["data_offsets"]
    array = np.frombuffer(bytes(data[begin:end]), "<f4").copy()
    change(array)
    data[begin:end] = array.tobytes()
    flat = {}
    for key, entry in header.items():
        if key != "__metadata__":
            b, e = entry["data_offsets"]
            flat[key] = np.frombuffer(bytes(data[b:e]), "<f4").reshape(entry["shape"])
    record = json.loads(header["__metadata__"]["record"])
    record["checksum"] = weights.checksum(flat)
    header["__metadata__"]["record"] = json.dumps(record)
    return join(header, bytes(data))


def first_array(raw):
    header, _ = split(raw)
    return sorted(k for k in header if k != "__metadata__")[0]


def header_end(raw):
    return 8 + int.from_bytes(raw[:8], "little")


def plain_safetensors():
    from safetensors.numpy import save

    return save({"w": np.ones(3, np.float32)})


def rename(header, old, new):
    header[new] = header.pop(old)


def retype(header, name, dtype):
    header[name]["dtype"] = dtype


def reshape(header, name):
    header[name]["shape"] = header[name]["shape"][::-1] + [1]


# (id, raw -> bytes, words the message must hold)
CASES = [
    ("empty", lambda raw: b"", "0 bytes, too short"),
    ("one byte", lambda raw: raw[:1], "too short"),
    ("not safetensors: text", lambda raw: b"this is a text file, not weights\n" * 4, "header"),
    ("not safetensors: random", lambda raw: np.random.default_rng(0).bytes(4096), "header"),
    ("not safetensors: PNG", lambda raw: b"\x89PNG\r\n\x1a\n" + bytes(200), "header"),
    ("not safetensors: zip", lambda raw: b"PK\x03\x04" + bytes(300), "header"),
    ("not safetensors: JSON", lambda raw: json.dumps({"weights": [1, 2, 3]}).encode() * 9,
     "header"),
    ("header not UTF-8", lambda raw: join({}, b"")[:8] + b"\xff" * 8,
     "header that is not UTF-8"),
    ("header not an object", lambda raw: join([1, 2, 3], b""), "not a JSON object"),
    ("header nested too deep", lambda raw: len(b"[" * 100000).to_bytes(8, "little")
     + b"[" * 100000, "header that is not valid JSON"),
    ("header length 2**63", lambda raw: HUGE.to_bytes(8, "little") + raw[8:],
     f"declares a {HUGE}-byte header"),
    ("header length 2**40", lambda raw: (1 << 40).to_bytes(8, "little") + raw[8:],
     "headers are at most"),
    ("header length past the end", lambda raw: (len(raw) - 7).to_bytes(8, "little") + raw[8:],
     "not a safetensors file, or truncated"),
    ("no metadata", lambda raw: edit_header(raw, lambda h: h.pop("__metadata__")),
     "expected a safetensors file with format 'greenpc'"),
    ("plain safetensors", lambda raw: plain_safetensors(), "format 'greenpc'"),
    ("other format name", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(format="pytorch")),
     "has format 'pytorch', expected 'greenpc'"),
    ("format name missing", lambda raw: edit_header(raw, lambda h: h["__metadata__"].pop("format")),
     "lacks the format name (expected format 'greenpc'"),
    ("version 2", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(format_version="2")),
     "format version 2; this greenpc reads versions 1"),
    ("version 0", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(format_version="0")),
     "format version 0; this greenpc reads versions 1"),
    ("version 123456", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(format_version="123456")),
     "format version 123456; this greenpc reads versions 1"),
    ("version not a number", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(format_version="one")),
     "format version 'one', expected an integer (this greenpc reads versions 1)"),
    ("version 1.0", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(format_version="1.0")),
     "format version '1.0', expected an integer"),
    ("version missing", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].pop("format_version")),
     "lacks format_version (this greenpc reads versions 1)"),
    ("record not JSON", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(record="{architecture: nope")),
     "record that is not valid JSON"),
    ("record cut short", lambda raw: edit_header(
        raw, lambda h: h["__metadata__"].update(record=h["__metadata__"]["record"][:-40])),
     "record that is not valid JSON"),
    ("record a list", lambda raw: edit_header(raw, lambda h: h["__metadata__"].update(record="[]")),
     "record that is not a JSON object"),
    ("record missing", lambda raw: edit_header(raw, lambda h: h["__metadata__"].pop("record")),
     "lacks the record"),
    ("record lacks architecture", lambda raw: edit_record(raw, lambda r: r.pop("architecture")),
     "record lacks architecture"),
    ("record lacks problem", lambda raw: edit_record(raw, lambda r: r.pop("problem")),
     "record lacks problem"),
    ("record lacks training", lambda raw: edit_record(raw, lambda r: r.pop("training")),
     "record lacks training"),
    ("record lacks checksum", lambda raw: edit_record(raw, lambda r: r.pop("checksum")),
     "record lacks checksum"),
    ("problem lacks name", lambda raw: edit_record(raw, lambda r: r["problem"].pop("name")),
     "problem must be an object holding name, params, trained_params, domain"),
    ("problem lacks domain", lambda raw: edit_record(raw, lambda r: r["problem"].pop("domain")),
     "problem must be an object holding"),
    ("unknown problem", lambda raw: edit_record(raw, lambda r: r["problem"].update(name="heat9d")),
     "problem 'heat9d', which this greenpc does not know"),
    ("domain of another dimension", lambda raw: edit_record(
        raw, lambda r: r["problem"].update(domain=[[0, 0], [1, 1]])),
     "expected [[low] * 1, [high] * 1] with low < high"),
    ("empty domain", lambda raw: edit_record(raw, lambda r: r["problem"].update(domain=[[1], [0]])),
     "with low < high"),
    ("parameter not a number", lambda raw: edit_record(
        raw, lambda r: r["problem"].update(params={"k2": "fifty"})),
     "expected an object of finite numbers"),
    ("trained parameter the problem lacks", lambda raw: edit_record(
        raw, lambda r: r["problem"].update(trained_params={"theta": {"low": 1, "high": 0}})),
     "which shifted1d does not take as a network input"),
    ("architecture unknown field", lambda raw: edit_record(
        raw, lambda r: r["architecture"].update(colour="blue")),
     "invalid architecture: architecture: unknown fields ['colour']"),
    ("architecture depth 10**9", lambda raw: edit_record(
        raw, lambda r: r["architecture"].update(depth=10 ** 9)),
     "architecture depth 1000000000, expected an integer in [1, 64]"),
    ("architecture negative width", lambda raw: edit_record(
        raw, lambda r: r["architecture"].update(widths=[-3])),
     "expected integers in [1, 4096]"),
    ("architecture dim as text", lambda raw: edit_record(
        raw, lambda r: r["architecture"].update(dim="1")),
     "architecture dim '1', expected an integer in [1, 3]"),
    ("architecture epsilons increasing", lambda raw: edit_record(
        raw, lambda r: r["architecture"].update(epsilons=[0.01, 0.1], widths=[3, 3],
                                                 alpha0=[1.0, 1.0])),
     "epsilons must decrease"),
    ("architecture NaN alpha0", lambda raw: edit_record(
        raw, lambda r: r["architecture"].update(alpha0=[float("nan")])),
     "expected finite numbers"),
    ("checksum not a digest", lambda raw: edit_record(raw, lambda r: r.update(checksum="abc")),
     "checksum that is not a SHA-256 hex digest"),
    ("checksum of other arrays", lambda raw: edit_record(
        raw, lambda r: r.update(checksum="0" * 64)), "checksum mismatch"),
    ("data bit flipped", lambda raw: raw[:-4] + bytes([raw[-4] ^ 0x01]) + raw[-3:],
     "checksum mismatch"),
    ("array renamed", lambda raw: edit_header(raw, lambda h: rename(h, first_array(raw), "evil")),
     "missing ['far/hidden_0/bias'], unexpected ['evil']"),
    ("array missing", lambda raw: edit_header(raw, lambda h: h.pop(first_array(raw))),
     "arrays do not match the architecture (missing ['far/hidden_0/bias']"),
    ("array extra", lambda raw: edit_header(
        raw, lambda h: h.update(extra={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})),
     "unexpected ['extra']"),
    ("array wrong shape", lambda raw: edit_header(raw, lambda h: reshape(h, first_array(raw))),
     "1 array(s) do not have the architecture's shapes: 'far/hidden_0/bias' is F32 [4, 1], "
     "expected [4]"),
    ("array float64", lambda raw: edit_header(raw, lambda h: retype(h, first_array(raw), "F64")),
     "array 'far/hidden_0/kernel' is F32 but 'far/hidden_0/bias' is F64 (expected one float dtype "
     "for all arrays)"),
    ("array int32", lambda raw: edit_header(raw, lambda h: retype(h, first_array(raw), "I32")),
     "is I32 [4], expected float32 or float64 [4]"),
    ("array python object", lambda raw: edit_header(
        raw, lambda h: retype(h, first_array(raw), "object")), "is object [4], expected float32 or float64"),
    ("array shape not a list", lambda raw: edit_header(
        raw, lambda h: h[first_array(raw)].update(shape=4)), "expected a dtype name and a list"),
    ("offsets reversed", lambda raw: edit_header(
        raw, lambda h: h[first_array(raw)].update(data_offsets=[16, 0])), "invalid data offsets"),
    ("offsets negative", lambda raw: edit_header(
        raw, lambda h: h[first_array(raw)].update(data_offsets=[-16, 0])), "invalid data offsets"),
    ("offsets past the end", lambda raw: edit_header(
        raw, lambda h: h[first_array(raw)].update(data_offsets=[1 << 40, (1 << 40) + 16])),
     "expected 16 within the file"),
    ("NaN value", lambda raw: edit_array(raw, first_array(raw), lambda a: a.__setitem__(1, np.nan)),
     "array 'far/hidden_0/bias' holds NaN or Inf values (1 of 4 entries)"),
    ("Inf value", lambda raw: edit_array(raw, first_array(raw), lambda a: a.__setitem__(0, np.inf)),
     "holds NaN or Inf values"),
    ("-Inf values", lambda raw: edit_array(raw, first_array(raw), lambda a: a.__setitem__(
        slice(None), -np.inf)), "holds NaN or Inf values (4 of 4 entries)"),
]


@pytest.mark.parametrize("name,make,words", CASES, ids=[c[0] for c in CASES])
def test_bad_file_names_the_file_and_what_was_expected(tmp_path, valid, name, make, words):
    path = tmp_path / "bad.gpc"
    path.write_bytes(make(valid))
    with pytest.raises(weights.WeightFileError) as raised:
        weights.load(path)
    assert str(raised.value).startswith(f"weight file {path}: ")
    assert words in str(raised.value)


def test_truncated_at_any_of_many_offsets(tmp_path, valid):
    end = header_end(valid)
    offsets = sorted({1, 7, 8, 9, 20, end // 2, end - 1, end, end + 1, (end + len(valid)) // 2,
                      len(valid) - 4, len(valid) - 1})
    path = tmp_path / "cut.gpc"
    for offset in offsets:
        path.write_bytes(valid[:offset])
        with pytest.raises(weights.WeightFileError, match=f"weight file {path}: ") as raised:
            weights.load(path)
        assert any(w in str(raised.value) for w in ("too short", "truncated")), (offset, raised.value)
    assert len(offsets) == 12


def test_missing_file_directory_and_fifo(tmp_path):
    with pytest.raises(weights.WeightFileError, match="nowhere.gpc: does not exist"):
        weights.load(tmp_path / "nowhere.gpc")
    with pytest.raises(weights.WeightFileError, match="is a directory"):
        weights.load(tmp_path)
    os.mkfifo(tmp_path / "pipe.gpc")  # opening it would block: refused before opening
    with pytest.raises(weights.WeightFileError, match="is not a regular file"):
        weights.load(tmp_path / "pipe.gpc")
    with pytest.raises(weights.WeightFileError, match="cannot be read: Not a directory"):
        (tmp_path / "file").write_bytes(b"x")
        weights.load(tmp_path / "file" / "inside.gpc")


def test_huge_header_length_allocates_nothing_big(tmp_path, valid):
    path = tmp_path / "huge.gpc"
    for length in (HUGE, 1 << 40, weights.MAX_HEADER_BYTES + 1):
        path.write_bytes(length.to_bytes(8, "little") + bytes(64))
        tracemalloc.start()
        try:
            with pytest.raises(weights.WeightFileError, match="declares a"):
                weights.load(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_arrays_larger_than_the_file_are_refused_before_reading(tmp_path, valid):
    """A record claiming a wide network in a small file: refused from the sizes alone."""
    path = tmp_path / "wide.gpc"
    path.write_bytes(edit_record(valid, lambda r: r["architecture"].update(far_width=4096)))
    tracemalloc.start()
    try:
        with pytest.raises(weights.WeightFileError, match="bytes of float32 arrays after the"):
            weights.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = os.path.join(tempfile.gettempdir(), f"greenpc-fault-marker-{os.getpid()}")


def test_loading_never_executes_code(tmp_path, valid, monkeypatch):
    """Pickle payloads and Python source in a file are data: nothing unpickles or evaluates them."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the weight reader must not unpickle or evaluate anything")

    for module, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"),
                         (builtins, "eval"), (builtins, "exec"), (np, "load")):
        monkeypatch.setattr(module, name, forbidden)
    payload = pickle.dumps(Exploit())
    code = f"__import__('os').system('touch {MARKER}')"
    files = {
        "pickle in the record": edit_header(valid, lambda h: h["__metadata__"].update(
            record=payload.decode("latin-1"))),
        "code in the record": edit_header(valid, lambda h: h["__metadata__"].update(record=code)),
        "code as the version": edit_header(valid, lambda h: h["__metadata__"].update(
            format_version=code)),
        "code as a problem name": edit_record(valid, lambda r: r["problem"].update(name=code)),
        "pickle as array data": valid[:header_end(valid)] + payload + valid[header_end(valid)
                                                                            + len(payload):],
        "pickle as the whole file": payload,
        "code in a training record": edit_record(valid, lambda r: r["training"].update(cmd=code)),
    }
    outcomes = {}
    for name, raw in files.items():
        path = tmp_path / "exploit.gpc"
        path.write_bytes(raw)
        try:
            weights.load(path)
            outcomes[name] = "loaded"
        except weights.WeightFileError:
            outcomes[name] = "refused"
    assert not os.path.exists(MARKER)
    assert outcomes.pop("code in a training record") == "loaded"  # plain data, stored as text
    assert set(outcomes.values()) == {"refused"}
    path.write_bytes(valid)
    assert weights.load(path).record["checksum"]


def test_save_refuses_non_finite_arrays_and_keeps_the_old_file(tmp_path):
    from greenpc.model.network import final_params, init_params

    path = tmp_path / "m.gpc"
    fault_models.write(path)
    before = path.read_bytes()
    arch = fault_models.architecture()
    params = final_params(arch, init_params(arch, 0))
    params["far"]["output"]["bias"] = np.full(1, np.nan, np.float32)
    with pytest.raises(weights.WeightFileError, match="not written, array 'far/output/bias' holds NaN"):
        weights.save(path, arch, {}, params, {})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.gpc"]


# -- property-based fuzzing of the reader -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8)

mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 30), st.integers(1, 64)),
    st.tuples(st.just("length"), st.integers(0, 2 ** 64 - 1)),
    st.tuples(st.just("header"), st.integers(0, 1 << 30), json_values),
    st.tuples(st.just("record"), st.integers(0, 1 << 30), json_values),
    st.tuples(st.just("drop"), st.integers(0, 1 << 30)),
)


def leaves(node, path=()):
    """Paths to every value inside a JSON tree (containers too)."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += leaves(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += leaves(value, path + (i,))
    return out


def replace(tree, path, value, drop=False):
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


def mutate(raw, mutation):
    kind, where = mutation[0], mutation[1]
    if kind == "flip" and raw:
        i = where % len(raw)
        return raw[:i] + bytes([raw[i] ^ mutation[2]]) + raw[i + 1:]
    if kind == "truncate":
        return raw[:where % (len(raw) + 1)]
    if kind == "insert":
        i = where % (len(raw) + 1)
        return raw[:i] + mutation[2] + raw[i:]
    if kind == "delete":
        i = where % (len(raw) + 1)
        return raw[:i] + raw[i + mutation[2]:]
    if kind == "length":
        return where.to_bytes(8, "little") + raw[8:]
    try:
        header, data = split(raw)
        record = json.loads(header["__metadata__"]["record"]) if kind == "record" else None
    except (ValueError, KeyError, TypeError, RecursionError):
        return raw  # the structure to edit is gone already: an earlier mutation broke it
    tree = record if kind == "record" else header
    paths = leaves(tree)
    path = paths[where % len(paths)]
    if kind == "drop":
        tree = replace(tree, path, None, drop=True) if path else {}
    else:
        tree = replace(tree, path, mutation[2])
    if kind == "record":
        header["__metadata__"]["record"] = json.dumps(tree)
        tree = header
    return join(tree, data)


@settings(max_examples=400, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(mutations, min_size=1, max_size=3))
def test_fuzzed_files_load_or_fail_cleanly(valid, tmp_path, changes):
    raw = valid
    for change in changes:
        raw = mutate(raw, change)
    path = tmp_path / "fuzz.gpc"
    path.write_bytes(raw)
    try:
        model = weights.load(path)
    except weights.WeightFileError as err:
        assert str(err).startswith(f"weight file {path}: ") and len(str(err)) > len(str(path)) + 20
        return
    flat = weights.flatten(model.params)
    expected = weights.expected_arrays(model.architecture)
    assert {k: v.shape for k, v in flat.items()} == expected
    assert len({v.dtype for v in flat.values()}) == 1
    assert all(np.all(np.isfinite(v)) for v in flat.values())
    assert weights.checksum(flat) == model.record["checksum"]


@pytest.fixture(autouse=True, scope="module")
def no_hang():
    """A reader that hangs ends the test process with a traceback instead of stalling the suite."""
    faulthandler.dump_traceback_later(600, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
