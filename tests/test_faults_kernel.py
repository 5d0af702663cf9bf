"""Kernel output that cannot be used, and a failing a posteriori check: clear errors, never a silent PC.

Faulty kernels are ``greenpc.kernels.Kernel`` subclasses wrapping the closed-form shifted1d Green's
function, passed to the PC as objects (``greenpc.create(pc, kernel=...)``).
"""
import re

import numpy as np
import pytest

import greenpc
from greenpc.driver import pushed_options
from greenpc.kernels import Kernel, KernelError, closed_form
from greenpc.pc.collective import GreenPCError
from pc_helpers import PETSc, problems
from greenpc.problems import dmda

FORMATS = {"dense": {"greenpc_format": "dense"}, "sparse": {"greenpc_format": "sparse"},
           "hmatrix": {"greenpc_format": "hmatrix"},
           "auto (decay test)": {"greenpc_format": "auto", "greenpc_dense_max": "0"}}
PAIR = re.compile(r"is not finite at x=\[([^\]]*)\], y=\[([^\]]*)\] \((\d+) of (\d+) pairs\)")


class Faulty(Kernel):
    """shifted1d's Green's function, replaced by ``value`` where ``bad(x, y)`` holds."""

    name = "faulty shifted1d"

    def __init__(self, bad, value=np.nan):
        super().__init__()
        self.inner = closed_form("shifted1d", {"k2": 20.0})
        self.bad, self.value = bad, value

    def _evaluate(self, x, y):
        return np.where(self.bad(x[:, 0], y[:, 0]), self.value, self.inner._evaluate(x, y))


class FailsAtCall(Faulty):
    """Correct until its ``call``-th evaluation, which is NaN for every pair of that call."""

    def __init__(self, call):
        super().__init__(lambda x, y: np.zeros(len(x), bool))
        self.call, self.calls = call, 0

    def _evaluate(self, x, y):
        self.calls += 1
        values = self.inner._evaluate(x, y)
        return values * np.nan if self.calls == self.call + 1 else values


class Returns(Faulty):
    """Evaluations that return ``make(values)`` instead of the values."""

    def __init__(self, make):
        super().__init__(lambda x, y: np.zeros(len(x), bool))
        self.make = make

    def _evaluate(self, x, y):
        return self.make(self.inner._evaluate(x, y))


class Raises(Faulty):
    def __init__(self, error):
        super().__init__(lambda x, y: np.zeros(len(x), bool))
        self.error = error

    def _evaluate(self, x, y):
        raise self.error


class Rough(Faulty):
    """Far from low rank (an oscillating factor): a coarse H-matrix misses it by far."""

    def __init__(self):
        super().__init__(lambda x, y: np.zeros(len(x), bool))

    def _evaluate(self, x, y):
        return self.inner._evaluate(x, y) * (1.0 + 0.2 * np.cos(3000.0 * x[:, 0] * y[:, 0]))


def set_up(kernel, options, N=64):
    """A KSP on shifted1d (k2 = 20) with greenpc using ``kernel``; returns (ksp, error text or None)."""
    da, A = dmda.build(problems.get("shifted1d"), problems.Grid(1, N), {"k2": 20.0})
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    ksp.setType("fgmres")
    greenpc.create(ksp.getPC(), kernel=kernel)
    with pushed_options(options):
        ksp.setFromOptions()
        try:
            ksp.setUp()
        except PETSc.Error as err:
            return ksp, chain(err)
    return ksp, None


def chain(error):
    """The GreenPCError behind a PETSc error, with its text."""
    while error is not None and not isinstance(error, GreenPCError):
        error = error.__cause__ or error.__context__
    assert error is not None, "the PETSc error does not carry a GreenPCError"
    return str(error)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("options", list(FORMATS.values()), ids=list(FORMATS))
def test_non_finite_value_reports_the_pair(options, value):
    def bad(x, y):
        return (np.abs(x - 0.5) < 0.05) & (np.abs(x - y) < 0.02)  # on and beside the diagonal

    _, text = set_up(Faulty(bad, value), options)
    match = PAIR.search(text or "")
    assert match, text
    x, y = float(match.group(1)), float(match.group(2))
    assert bad(np.array([x]), np.array([y]))[0], text  # the pair named is a bad one
    assert text.startswith("greenpc: faulty shifted1d is not finite at")
    assert 0 < int(match.group(3)) <= int(match.group(4))


@pytest.mark.parametrize("options", list(FORMATS.values()), ids=list(FORMATS))
def test_a_fault_at_every_kernel_evaluation_is_reported(options):
    """NaN from the k-th evaluation, for every k until set-up succeeds: the format, the decay test and
    the diagonal fit's evaluations each fail cleanly."""
    attempts = 0
    while True:
        kernel = FailsAtCall(attempts)
        ksp, text = set_up(kernel, options)
        if text is None:
            break
        assert "is not finite at x=" in text and "pairs)" in text, text
        attempts += 1
        assert attempts < 200
    # the format's evaluations and the fit's; the sparse format's fit finds its values among the
    # format's own on one rank, so that set-up evaluates once
    least = 1 if options["greenpc_format"] == "sparse" else 2
    assert attempts == kernel.calls >= least
    b = ksp.getOperators()[0].createVecLeft()
    b.set(1.0)
    x = b.duplicate()
    ksp.solve(b, x)
    assert ksp.getConvergedReason() > 0


@pytest.mark.parametrize("error,words", [
    (ZeroDivisionError("float division by zero"), "ZeroDivisionError: float division by zero"),
    (KeyError("weights"), "weights"),
    (TypeError("bad operand"), "TypeError: bad operand"),
    (MemoryError(), "MemoryError"),
    (KernelError("the model cannot be evaluated here"), "the model cannot be evaluated here"),
], ids=["ZeroDivisionError", "KeyError", "TypeError", "MemoryError", "KernelError"])
def test_kernel_exceptions_of_any_type_become_greenpc_errors(error, words):
    _, text = set_up(Raises(error), FORMATS["sparse"])
    assert text == f"greenpc: {words}"


@pytest.mark.parametrize("make,words", [
    (lambda v: 1.0, "returned shape () for"),
    (lambda v: v[:-1], "returned shape"),
    (lambda v: np.concatenate([v, v]), "returned shape"),
    (lambda v: v[:, None], "returned shape"),
    (lambda v: v + 1j, "returned complex values"),
    (lambda v: v.astype(str), "returned values of type <U"),
], ids=["scalar", "too few", "too many", "column", "complex", "strings"])
def test_kernel_output_of_the_wrong_shape_or_type_is_refused(make, words):
    _, text = set_up(Returns(make), FORMATS["dense"])
    assert text is not None and "faulty shifted1d" in text and words in text, text


CHECK = {"greenpc_format": "hmatrix", "greenpc_hmat_tol": "0.5", "greenpc_check_tol": "1e-3"}


def test_failing_a_posteriori_check_is_an_error_by_default():
    _, text = set_up(Rough(), CHECK, N=200)
    match = re.search(r"a posteriori check failed: mean relative error (\S+) of 256 sampled entries > "
                      r"-greenpc_check_tol 0.001 \(-greenpc_check_fallback dense\|sparse rebuilds "
                      r"instead\)", text or "")
    assert match, text
    assert float(match.group(1)) > 1e-3


@pytest.mark.parametrize("fallback", ["dense", "sparse"])
def test_failing_check_falls_back_to_the_format_asked_for(fallback):
    ksp, text = set_up(Rough(), {**CHECK, "greenpc_check_fallback": fallback}, N=200)
    assert text is None
    summary = ksp.getPC().getPythonContext().summary()
    assert summary["format"] == fallback
    assert "a posteriori check failed" in summary["reason"]
    assert summary["reason"].endswith(f"fell back to {fallback}")
    assert summary["check_error"] > 1e-3
    assert ksp.getPC().getPythonContext().op.kind == fallback
    b = ksp.getOperators()[0].createVecLeft()
    b.set(1.0)
    x = b.duplicate()
    ksp.getPC().apply(b, x)  # the rough kernel is a poor preconditioner, but a working one
    assert np.all(np.isfinite(x.getArray())) and x.norm() > 0


@pytest.mark.parametrize("options", [{"greenpc_check_fallback": "none"}, {"greenpc_check_tol": "0"}],
                         ids=["fallback none", "tol 0"])
def test_check_without_consequence_keeps_the_hmatrix_and_reports(options):
    ksp, text = set_up(Rough(), {**CHECK, **options}, N=200)
    assert text is None
    summary = ksp.getPC().getPythonContext().summary()
    assert summary["format"] == "hmatrix" and summary["check_error"] > 1e-3
