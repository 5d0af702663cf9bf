"""Weight files round-trip bit-exactly and refuse what they cannot trust (more in test_faults_*)."""
import json

import numpy as np
import pytest

from greenpc import weights
from greenpc.model import Architecture
from greenpc.model.network import final_params, init_params

ARCH = Architecture(dim=1, epsilons=(1e-2, 1e-3), widths=(3, 4), alpha0=(1.0, 1.0), far_width=5,
                    subdomains=2)
PROBLEM = {"name": "react1d", "params": {}, "trained_params": {}, "domain": [[0.0], [1.0]]}


def write(path, params=None, architecture=ARCH):
    params = params if params is not None else final_params(architecture, init_params(architecture, 0))
    weights.save(path, architecture, PROBLEM, params, {"steps": 0})
    return params


def test_round_trip_is_bit_exact(tmp_path):
    path = tmp_path / "m.gpc"
    params = write(path)
    model = weights.load(path)
    original, loaded = weights.flatten(params), weights.flatten(model.params)
    assert set(original) == set(loaded)
    for name in original:
        assert np.asarray(original[name]).tobytes() == loaded[name].tobytes()
    assert model.architecture == ARCH and model.problem == PROBLEM


def _rewrite_metadata(path, change):
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    change(header)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length:])


def test_unknown_version_is_refused_by_name(tmp_path):
    path = tmp_path / "m.gpc"
    write(path)
    _rewrite_metadata(path, lambda h: h["__metadata__"].update(format_version="7"))
    with pytest.raises(weights.WeightFileError, match="format version 7; this greenpc reads versions 1"):
        weights.load(path)


def test_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "m.gpc"
    wider = Architecture(**{**ARCH.to_dict(), "far_width": 6})
    write(path, final_params(wider, init_params(wider, 0)))
    _rewrite_metadata(path, lambda h: h["__metadata__"].update(
        record=json.dumps({**json.loads(h["__metadata__"]["record"]),
                           "architecture": ARCH.to_dict()})))
    with pytest.raises(weights.WeightFileError, match="far/hidden_0/kernel.* expected"):
        weights.load(path)


def test_corrupted_array_fails_the_checksum(tmp_path):
    path = tmp_path / "m.gpc"
    write(path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # a bit in the last array's data: still finite, wrong values
    path.write_bytes(bytes(raw))
    with pytest.raises(weights.WeightFileError, match="checksum mismatch"):
        weights.load(path)
