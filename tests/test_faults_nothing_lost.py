"""Nothing lost: atomic files, resumable training after SIGKILL, and solves that leave the user's data alone.

The training test kills the trainer (tests/scripts/fault_train.py) with SIGKILL at points drawn from a
fixed seed - at the start of an epoch, inside the write of a checkpoint or of the weight file, before a
rename, after a completed write, and once at a random moment - resumes each time with -train_resume, and
compares the final arrays bit for bit with an uninterrupted run. The runs share a JAX compilation cache
(only the first run compiles), so the whole sequence stays short.
"""
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from greenpc import weights
from greenpc.driver import pushed_options
from greenpc.train import checkpoint as ckpt
from greenpc.train import config as train_config
from pc_helpers import PETSc, problems
from greenpc.problems import dmda

from conftest import ROOT

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
import fault_models  # noqa: E402

TINY = {"problem": "shifted1d", "train_widths": "3", "train_epsilons": "0.01", "train_far_width": "4",
        "train_depth": "1", "train_aux_depth": "1", "train_aux_width": "2", "train_epochs": "4,4",
        "train_batches_per_epoch": "1", "train_batch_boundary": "16", "train_batch_anchor": "16",
        "train_batch_uniform": "16", "train_batch_near": "16", "train_anchor_N": "8",
        "train_gate_steps": "3", "train_subdomains": "2", "train_progress": "0", "train_threads": "1",
        "train_checkpoint_steps": "1"}
RUN_LIMIT = 300  # seconds for one trainer process (the first one compiles: about 30 s on a busy machine)


def trainer(kill, output, cache, resume=True):
    """Start fault_train.py; returns the Popen."""
    args = [sys.executable, "tests/scripts/fault_train.py", kill, "-train_output", str(output)]
    for key, value in TINY.items():
        args += [f"-{key}", value]
    args += ["-train_resume"] if resume else []
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
           "XLA_FLAGS": "--xla_backend_optimization_level=0"}  # compiles faster; same for every run
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(process):
    out, _ = process.communicate(timeout=RUN_LIMIT)
    return process.returncode, out


def arrays(path):
    return {k: v.tobytes() for k, v in weights.flatten(weights.load(path).params).items()}


def kill_at_a_random_moment(output, cache, rng):
    """Kill once the run has written its first checkpoint, after a random delay (if still running)."""
    checkpoint = str(output) + ".ckpt"
    before = os.stat(checkpoint).st_mtime_ns if os.path.exists(checkpoint) else None
    process = trainer("none", output, cache)
    deadline = time.monotonic() + RUN_LIMIT
    while process.poll() is None and time.monotonic() < deadline:
        if os.path.exists(checkpoint) and os.stat(checkpoint).st_mtime_ns != before:
            time.sleep(rng.uniform(0.0, 0.2))
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    return finish(process)


def test_training_killed_at_several_points_resumes_to_identical_weights(tmp_path):
    cache = tmp_path / "jax-cache"
    code, out = finish(trainer("none", tmp_path / "reference.gpc", cache, resume=False))
    assert code == 0, out
    rng = np.random.default_rng(8)
    kills = [f"epoch:{rng.integers(2, 4)}", f"fsync:ckpt:{rng.integers(1, 3)}",
             f"replace:{rng.integers(1, 3)}", "random", f"after:{rng.integers(1, 3)}", "fsync:gpc:1"]
    output = tmp_path / "run" / "model.gpc"
    for kill in kills:
        if kill == "random":
            code, out = kill_at_a_random_moment(output, cache, rng)
        else:
            code, out = finish(trainer(kill, output, cache))
            assert code == -signal.SIGKILL, (kill, out)  # the kill point was reached
    if os.path.exists(output):  # only if the randomly killed run finished: never a half file
        weights.load(output)
    code, out = finish(trainer("none", output, cache))
    assert code == 0 and "resuming" in out, out
    assert arrays(output) == arrays(tmp_path / "reference.gpc")
    assert weights.load(output).record["training"]["steps"] == 11
    leftovers = sorted(p.name for p in output.parent.iterdir() if p.name not in
                       ("model.gpc", "model.gpc.ckpt"))
    assert all(name.startswith((".model.gpc.tmp-", ".model.gpc.ckpt.tmp-")) for name in leftovers)


def test_the_same_configuration_resumes_and_another_is_refused(tmp_path):
    config = train_config.from_options({**TINY, "train_output": str(tmp_path / "m.gpc")})
    from greenpc.model.network import init_params

    params = init_params(config.architecture(), 0)
    ckpt.save(config, params, None, 1, 0, 4, [], 1.0)
    state = ckpt.load(config)
    assert state["stage"] == 1 and state["step"] == 4
    for name, value in weights.flatten(params).items():
        assert np.asarray(weights.flatten(state["params"])[name]).tobytes() == np.asarray(value).tobytes()
    other = train_config.from_options({**TINY, "train_output": str(tmp_path / "m.gpc"),
                                       "train_seed": "5"})
    with pytest.raises(ckpt.CheckpointError, match="written by a different training configuration"):
        ckpt.load(other)
    path = tmp_path / "m.gpc.ckpt"
    raw = path.read_bytes()
    for broken in (raw[:40], b"", b"not a checkpoint at all", raw[:-100]):
        path.write_bytes(broken)
        with pytest.raises(ckpt.CheckpointError, match=f"checkpoint {path}: .*remove it to train from "
                                                       "the start"):
            ckpt.load(config)


def test_atomic_write_leaves_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "m.gpc"
    path.write_bytes(b"old contents")
    for name in ("fsync", "replace"):
        def failing(*args, name=name):
            raise OSError(28, f"No space left on device ({name})")
        with monkeypatch.context() as patch:
            patch.setattr(os, name, failing)
            with pytest.raises(OSError, match="No space left"):
                weights.atomic_write(path, b"new contents")
        assert path.read_bytes() == b"old contents"
        assert [p.name for p in tmp_path.iterdir()] == ["m.gpc"]


def test_atomic_write_is_write_fsync_rename_fsync_and_keeps_permissions(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(
        f"/proc/self/fd/{fd}"))), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(b))),
                                                     replace(a, b))[1])
    path = tmp_path / "m.gpc"
    path.write_bytes(b"old")
    path.chmod(0o640)
    weights.atomic_write(path, b"new")
    assert [c[0] for c in calls] == ["fsync", "replace", "fsync"]
    assert os.path.basename(calls[0][1]).startswith(".m.gpc.tmp-")  # the data, before the rename
    assert calls[1][1] == str(path) and calls[2][1] == str(tmp_path)  # then the directory entry
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    try:
        weights.atomic_write(tmp_path / "fresh.gpc", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "fresh.gpc").stat().st_mode) == 0o644


def test_weight_files_and_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    from greenpc.model.network import final_params, init_params

    written = []

    def recording(path, data):
        written.append(os.path.basename(path))

    monkeypatch.setattr(weights, "atomic_write", recording)
    monkeypatch.setattr(ckpt, "atomic_write", recording)
    arch = fault_models.architecture()
    params = init_params(arch, 0)
    weights.save(tmp_path / "m.gpc", arch, {}, final_params(arch, params), {})
    config = train_config.from_options({**TINY, "train_output": str(tmp_path / "t.gpc")})
    ckpt.save(config, init_params(config.architecture(), 0), None, 0, 0, 0, [], 0.0)
    assert written == ["m.gpc", "t.gpc.ckpt"]
    assert not list(tmp_path.iterdir())  # nothing was written any other way


GREENPC = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC", "greenpc_kernel": "shifted1d",
           "greenpc_param": "k2=20"}


def snapshot(A, vectors, da):
    indptr, indices, values = A.getValuesCSR()
    return {"csr": (indptr.tobytes(), indices.tobytes(), values.tobytes()),
            "norm": A.norm(PETSc.NormType.FROBENIUS), "size": A.getSize(),
            "vectors": [v.getArray().tobytes() for v in vectors],
            "coordinates": da.getCoordinates().getArray().tobytes(),
            "options": PETSc.Options().getAll()}


@pytest.mark.parametrize("options", [
    {"greenpc_format": "dense"}, {"greenpc_format": "sparse"},
    {"greenpc_format": "hmatrix", "greenpc_symmetric": "1"},
    {"greenpc_format": "auto", "greenpc_dense_max": "0", "greenpc_diagonal_fit": "0"},
], ids=["dense", "sparse", "hmatrix symmetric", "auto no diagonal fit"])
@pytest.mark.parametrize("form", ["interior", "boundary"])
def test_a_solve_leaves_matrix_vectors_and_options_as_they_were(options, form):
    grid = problems.Grid(1, 48, form)
    da, A = dmda.build(problems.get("shifted1d"), grid, {"k2": 20.0})
    b = dmda.random_rhs(grid, da, A, 3)
    before = snapshot(A, [b], da)
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options({**GREENPC, **options}):
        ksp.setFromOptions()
        inside = PETSc.Options().getAll()
        x = b.duplicate()
        ksp.setType("fgmres")
        ksp.solve(b, x)
        assert ksp.getConvergedReason() > 0
        assert PETSc.Options().getAll() == inside  # greenpc set no option of its own
        pc = ksp.getPC()
        y = b.duplicate()
        pc.apply(b, y)
        pc.applyTranspose(b, y)
    assert snapshot(A, [b], da) == before


def test_greenpc_create_sets_only_the_documented_options():
    import greenpc

    pc = PETSc.PC().create()
    pc.setOptionsPrefix("inner_")
    before = PETSc.Options().getAll()
    greenpc.create(pc, weights="tiny.gpc", format="sparse", symmetric=True)
    added = {k: v for k, v in PETSc.Options().getAll().items() if k not in before}
    try:
        assert added == {"inner_greenpc_weights": "tiny.gpc", "inner_greenpc_format": "sparse",
                         "inner_greenpc_symmetric": "1"}
    finally:
        for key in added:
            PETSc.Options().delValue(key)
