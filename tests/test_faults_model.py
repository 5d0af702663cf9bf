"""A model that does not fit the problem, and operators greenpc cannot serve: clear errors at set-up.

Models are untrained tiny networks (tests/scripts/fault_models.py) with the dimension, domain and
trained parameter ranges each case needs; the operators are small DMDA matrices.
"""
import os
import sys

import numpy as np
import pytest

import greenpc
from greenpc.driver import pushed_options
from greenpc.pc.collective import GreenPCError
from pc_helpers import PETSc, problems
from greenpc.problems import dmda

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
import fault_models  # noqa: E402

GREENPC = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    theta = {"theta": {"low": 0.0, "high": 1.0, "period": None}}
    return {
        "1d": fault_models.write(folder / "one.gpc"),
        "2d": fault_models.write(folder / "two.gpc", name="poisson2d", dim=2),
        "half": fault_models.write(folder / "half.gpc", domain=[[0.0], [0.5]]),
        "theta": fault_models.write(folder / "theta.gpc", name="rotlap2d", dim=2, trained=theta),
    }


def solver(name="shifted1d", N=16, matrix=None):
    problem = problems.get(name)
    da, A = dmda.build(problem, problems.Grid(problem.dim, N))
    ksp = PETSc.KSP().create()
    ksp.setOperators(matrix if matrix is not None else A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    return ksp


def failure(ksp, options):
    """The GreenPCError text of a set-up with ``options`` (None when it succeeds)."""
    with pushed_options({**GREENPC, **options}):
        try:
            ksp.setFromOptions()
            ksp.setUp()
        except PETSc.Error as err:
            while err is not None and not isinstance(err, GreenPCError):
                err = err.__cause__ or err.__context__
            assert err is not None, "the PETSc error does not carry a GreenPCError"
            return str(err)
    return None


def test_a_matching_model_sets_up(models):
    """The reference case: the tiny 1D model on a 1D mesh in its domain works."""
    ksp = solver()
    assert failure(ksp, {"greenpc_weights": models["1d"], "greenpc_format": "sparse"}) is None
    assert ksp.getPC().getPythonContext().summary()["weights"] == models["1d"]


@pytest.mark.parametrize("model,mesh,words", [
    ("2d", "shifted1d", "learned poisson2d model, single precision is 2D but got mesh points of "
                        "shape (16, 1)"),
    ("1d", "poisson2d", "learned shifted1d model, single precision is 1D but got mesh points of "
                        "shape (256, 2)"),
])
def test_model_dimension_differs_from_the_mesh(models, model, mesh, words):
    assert failure(solver(mesh), {"greenpc_weights": models[model]}) == f"greenpc: {words}"


def test_mesh_points_outside_the_trained_domain(models):
    text = failure(solver(), {"greenpc_weights": models["half"]})
    assert text.startswith("greenpc: mesh point [0.529412] is outside the domain [0.0] x [0.5] of "
                           "learned shifted1d model"), text


@pytest.mark.parametrize("param,words", [
    ("", "the model for 'rotlap2d' needs theta=VALUE (trained for 0 <= theta <= 1)"),
    ("theta=3", "theta=3 is outside the trained range [0, 1] of {path}"),
    ("theta=-0.5", "theta=-0.5 is outside the trained range [0, 1] of {path}"),
    ("theta=nan", "theta=nan is outside the trained range [0, 1] of {path}"),
    ("theta=0.5,xi=0.3", "the model for 'rotlap2d' has no parameter xi (it takes: theta)"),
], ids=["missing", "above", "below", "nan", "unknown"])
def test_parameters_missing_or_out_of_the_trained_range(models, param, words):
    text = failure(solver("poisson2d", 8), {"greenpc_weights": models["theta"], "greenpc_param": param})
    assert text == "greenpc: -greenpc_param: " + words.format(path=models["theta"]), text


def test_parameter_of_a_model_trained_at_fixed_values_is_refused(models):
    text = failure(solver(), {"greenpc_weights": models["1d"], "greenpc_param": "k2=20"})
    assert text == "greenpc: -greenpc_param: the model for 'shifted1d' has no parameter k2 (it takes: " \
                   "none)"


def test_a_bad_weight_file_through_the_pc_names_the_file(models, tmp_path):
    path = tmp_path / "cut.gpc"
    path.write_bytes(open(models["1d"], "rb").read()[:100])
    text = failure(solver(), {"greenpc_weights": str(path)})
    assert text.startswith(f"greenpc: weight file {path}: declares a"), text
    text = failure(solver(), {"greenpc_weights": "no_such_model"})
    assert text.startswith("greenpc: no shipped model 'no_such_model'"), text


def pc_with(A, P=None):
    pc = PETSc.PC().create()
    pc.setOperators(A, P if P is not None else A)
    greenpc.create(pc, kernel=greenpc.kernels.closed_form("poisson1d", {}))
    greenpc.set_coordinates(pc, np.linspace(0.1, 0.9, A.getSize()[0])[:, None])
    return pc


def set_up_error(pc):
    try:
        pc.setUp()
    except PETSc.Error as err:
        while err is not None and not isinstance(err, GreenPCError):
            err = err.__cause__ or err.__context__
        return str(err)
    return None


def aij(rows, cols):
    A = PETSc.Mat().createAIJ((rows, cols), nnz=1)
    for i in range(min(rows, cols)):
        A[i, i] = 2.0
    A.assemble()
    return A


def test_non_square_operator():
    assert set_up_error(pc_with(aij(8, 6))) == \
        "greenpc: the Pmat is 8 x 6; greenpc needs a square operator"


def test_amat_and_pmat_of_different_sizes():
    assert set_up_error(pc_with(aij(8, 8), aij(6, 6))) == \
        "greenpc: the Amat is 8 x 8 but the Pmat is 6 x 6; greenpc needs operators of the same size"


def test_complex_scalars_are_refused(monkeypatch):
    monkeypatch.setattr(PETSc, "ScalarType", np.complex128)
    assert set_up_error(pc_with(aij(8, 8))) == \
        "greenpc: greenpc needs a real PETSc build (this one uses complex scalars)"
