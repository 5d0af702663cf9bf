"""A fault on one rank only: every rank raises the same error and the job ends, under mpiexec -n 2 and 3.

Each run has a time limit: a rank waiting in a collective that another rank skipped would exceed it
(the whole process group is then killed and the test fails). The scenarios are in
tests/scripts/fault_parallel.py (one MPI job runs them all, then a good solve) and
tests/scripts/fault_solve.py (the solve driver, ending with the error).
"""
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import MPI_ENV, ROOT

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
import fault_models  # noqa: E402

LIMIT = 240  # seconds; a run takes about 15 s on two busy cores


def mpiexec(args, ranks, output=None):
    """(returncode, stdout, stderr) of ``mpiexec -n ranks python args``; fails the test past LIMIT.

    With ``output`` (a folder) each rank's output also goes to its own files there."""
    command = ["mpiexec", "--oversubscribe", "-n", str(ranks)]
    command += ["--output-filename", str(output)] if output else []
    command += [sys.executable] + list(args)
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **MPI_ENV}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = process.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{' '.join(command)} hung (killed after {LIMIT} s):\n{out[-2000:]}\n{err[-3000:]}")
    return process.returncode, out, err


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return fault_models.write(tmp_path_factory.mktemp("parallel") / "tiny.gpc")


EXPECTED = {
    "weights missing on rank 1": (1, "weight file {folder}/missing-on-this-rank.gpc: does not exist"),
    "weights truncated on the last rank": ("last", "weight file {folder}/truncated-{last}.gpc: "
                                                   "declares a"),
    "bad point on rank 0": (0, "mesh point [-0.25] is outside the domain [0.0] x [1.0]"),
    "zero boundary diagonal on the last rank": ("last", "a boundary row of the Pmat has a zero "
                                                        "diagonal"),
}
for kind in ("dense", "sparse", "hmatrix", "auto"):
    EXPECTED[f"non-finite kernel on the last rank ({kind})"] = ("last", "faulty shifted1d is not "
                                                                        "finite at x=[0.9")
for name in ("local_coordinates", "make_layout", "sparse_pattern", "hmatrix_plan", "decay_ratio",
             "build", "off_diagonal_pairs"):
    EXPECTED[f"TypeError in {name} on the last rank"] = ("last", f"TypeError: injected fault in {name}")


@pytest.mark.parametrize("ranks", [2, 3])
def test_a_fault_on_one_rank_is_the_same_error_on_every_rank(model, ranks):
    code, out, err = mpiexec(["tests/scripts/fault_parallel.py", model], ranks)
    assert code == 0, err[-3000:]
    results = json.loads(out.strip().splitlines()[-1])
    last = ranks - 1
    folder = os.path.dirname(model)
    for scenario, (rank, words) in EXPECTED.items():
        texts = results.pop(scenario)["texts"]
        rank = last if rank == "last" else rank
        assert len(texts) == ranks and len(set(texts)) == 1, (scenario, texts)
        words = words.format(folder=folder, last=last)
        assert texts[0].startswith(f"greenpc: {words}"), (scenario, texts[0])
        assert texts[0].endswith(f" (on rank {rank} of {ranks})"), (scenario, texts[0])
    sweeps = {k: results.pop(k) for k in list(results) if "k-th kernel call" in k}
    assert len(sweeps) == 8
    for scenario, result in sweeps.items():
        rank = int(scenario.split("on rank ")[1].split()[0])
        assert result["attempts"] >= 2, scenario  # the format's evaluations and the fit's
        assert len(set(result["texts"])) == 1 and "is not finite at x=" in result["texts"][0], scenario
        assert result["texts"][0].endswith(f" (on rank {rank} of {ranks})"), scenario
    assert results.pop("solve") == [2] * ranks  # KSP_CONVERGED_RTOL after all those failures
    assert not results


@pytest.mark.parametrize("ranks,bad_rank", [(2, 1), (3, 1), (3, 2)])
def test_the_driver_ends_with_the_error_on_every_rank(model, ranks, bad_rank, tmp_path):
    missing = os.path.join(os.path.dirname(model), "not-on-this-rank.gpc")
    code, out, err = mpiexec(["tests/scripts/fault_solve.py", str(bad_rank), "greenpc_weights", missing,
                              "-problem", "shifted1d", "-N", "64", "-pc_type", "python",
                              "-pc_python_type", "greenpc.GreenPC", "-greenpc_weights", model], ranks,
                             output=tmp_path)
    assert code != 0
    message = (f"GreenPCError: greenpc: weight file {missing}: does not exist (expected a .gpc weight "
               f"file) (on rank {bad_rank} of {ranks})")
    for rank in range(ranks):
        (stderr,) = tmp_path.glob(f"*/rank.{rank}/stderr")
        assert message in stderr.read_text(), (rank, err[-3000:])
