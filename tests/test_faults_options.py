"""Bad options: each is refused naming the option, the value and what was expected.

The PC's options (``greenpc.pc.options.SPECS``) through a real KSP set-up, the memory limit that no
format fits (the message says how much is needed, and that much is enough), and the trainer's.
"""
import re

import pytest

from greenpc.driver import pushed_options
from greenpc.pc.collective import GreenPCError
from greenpc.train import config as train_config
from pc_helpers import PETSc, problems
from greenpc.problems import dmda

KERNEL = {"pc_type": "python", "pc_python_type": "greenpc.GreenPC",
          "greenpc_kernel": "shifted1d", "greenpc_param": "k2=20"}


def set_up(options, N=64):
    """(ksp, error text or None) after a set-up with greenpc and ``options``."""
    da, A = dmda.build(problems.get("shifted1d"), problems.Grid(1, N), {"k2": 20.0})
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options({**KERNEL, **options}):
        try:
            ksp.setFromOptions()
            ksp.setUp()
        except PETSc.Error as err:
            while err is not None and not isinstance(err, GreenPCError):
                err = err.__cause__ or err.__context__
            assert err is not None, "the PETSc error does not carry a GreenPCError"
            return ksp, str(err)
    return ksp, None


# (option, value, what the message must say was expected)
BAD = [
    ("format", "blocky", "expected one of auto, dense, sparse, hmatrix"),
    ("format", "", "expected one of auto, dense, sparse, hmatrix"),
    ("format", "h-matrix", "expected one of auto, dense, sparse, hmatrix"),
    ("hmat_compressor", "svd", "expected one of auto, aca, nystrom, nystrom_nearest, chebyshev"),
    ("hmat_cheb_order", "0", "expected a positive value"),
    ("check_fallback", "retry", "expected one of error, dense, sparse, none"),
    ("precision", "half", "expected one of single, double"),
    ("dense_max", "-1", "expected a value >= 0"),
    ("dense_max", "many", "could not convert"),
    ("dense_max", "1.5", "expected an integer"),
    ("decay_rows", "0", "expected a positive value"),
    ("decay_rows", "-5", "expected a positive value"),
    ("sparse_nnz", "-1", "expected a value >= 0"),
    ("sparse_radius", "-0.1", "expected a value >= 0"),
    ("decay_radius", "-1", "expected a value >= 0"),
    ("hmat_leaf_size", "-4", "expected a value >= 0"),
    ("hmat_rank", "-1", "expected a value >= 0"),
    ("hmat_max_rank", "0", "expected a positive value"),
    ("check_samples", "-1", "expected a value >= 0"),
    ("memory_max", "0", "expected a positive value"),
    ("memory_max", "-10", "expected a positive value"),
    ("memory_max", "nan", "expected a finite number"),
    ("memory_max", "inf", "expected a finite number"),
    ("scale_vectors", "0", "expected a positive value"),
    ("scale", "-2", "expected a value >= 0"),
    ("seed", "-1", "expected a value >= 0"),
    ("hmat_eta", "-1", "expected eta > 0 (or inf)"),
    ("hmat_eta", "-inf", "expected eta > 0 (or inf)"),
    ("hmat_eta", "nan", "expected a finite number"),
    ("decay_tol", "0", "expected a value in (0, 1)"),
    ("decay_tol", "1", "expected a value in (0, 1)"),
    ("decay_tol", "2", "expected a value in (0, 1)"),
    ("decay_tol", "-0.1", "expected a value in (0, 1)"),
    ("hmat_tol", "0", "expected a value in (0, 1)"),
    ("hmat_tol", "1.5", "expected a value in (0, 1)"),
    ("hmat_tol", "x", "could not convert"),
    ("hmat_split_tol", "1.5", "expected a value in (0, 1)"),
    ("hmat_exact_split", "maybe", "expected a boolean (true/false)"),
    ("wall_correction", "maybe", "expected a boolean (true/false)"),
    ("check_tol", "-1", "expected a value >= 0"),
    ("check_tol", "nan", "expected a finite number"),
    ("symmetric", "maybe", "expected a boolean (true/false)"),
    ("smooth_its", "-1", "expected a value >= 0"),
    ("smooth_omega", "2", "expected 0 < omega < 2"),
    ("smooth_omega", "0", "expected 0 < omega < 2"),
    ("param", "k2", "expected NAME=VALUE"),
    ("param", "=5", "expected NAME=VALUE"),
    ("param", "k2=abc", "'abc' is not a number"),
]


@pytest.mark.parametrize("name,value,expected", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_bad_option_is_refused_naming_option_value_and_expectation(name, value, expected):
    _, text = set_up({f"greenpc_{name}": value})
    assert text is not None
    assert f"-greenpc_{name} {value!r}: " in text and expected in text, text


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_parameter_of_a_closed_form_kernel(value):
    _, text = set_up({"greenpc_param": f"k2={value}"})
    assert text == f"greenpc: closed-form kernel 'shifted1d': parameter k2={float(value)} is not a " \
                   "finite number"


def test_unknown_closed_form_kernel_lists_the_known_ones():
    _, text = set_up({"greenpc_kernel": "poisson7d"})
    assert "unknown closed-form kernel" in text and "poisson1d" in text


@pytest.mark.parametrize("options", [{"greenpc_kernel": ""},
                                     {"greenpc_weights": "somewhere.gpc"}],
                         ids=["neither", "both"])
def test_weights_and_kernel_are_one_or_the_other(options):
    _, text = set_up(options)
    assert "give exactly one of -greenpc_weights FILE|MODEL and -greenpc_kernel NAME" in text


def needs(text, kind):
    return float(re.search(rf"{kind},? needs (\S+) MiB", text).group(1))


def test_memory_limit_below_every_format_says_how_much_is_needed():
    _, text = set_up({"greenpc_memory_max": "1e-6", "greenpc_dense_max": "0"})
    assert re.search(r"-greenpc_memory_max 1e-06 MiB is too small for any format \(sparse needs "
                     r"\S+ MiB, hmatrix \S+ MiB per rank\)", text), text
    sparse = needs(text, "sparse")
    assert sparse > 0
    ksp, text = set_up({"greenpc_memory_max": str(sparse), "greenpc_dense_max": "0"})
    assert text is None
    assert ksp.getPC().getPythonContext().summary()["format"] == "sparse"  # that much is enough


@pytest.mark.parametrize("requested", ["dense", "sparse", "hmatrix"])
def test_memory_limit_below_the_requested_format_says_how_much_it_needs(requested):
    _, text = set_up({"greenpc_memory_max": "1e-6", "greenpc_format": requested})
    match = re.search(rf"-greenpc_memory_max 1e-06 MiB is too small for -greenpc_format {requested} "
                      rf"\(needs (\S+) MiB per rank; the smallest format, (\w+), needs (\S+) MiB\)", text)
    assert match, text
    ksp, text = set_up({"greenpc_memory_max": match.group(1), "greenpc_format": requested})
    assert text is None
    assert ksp.getPC().getPythonContext().summary()["format"] == requested


def test_aca_memory_is_judged_by_sampled_ranks_rather_than_its_rank_cap():
    ksp, text = set_up({"greenpc_format": "hmatrix"}, N=256)
    free = ksp.getPC().getPythonContext().summary()
    assert text is None and free["estimate_basis"] == "every far block at its planned rank"
    bound = free["memory_estimate"]
    assert free["bytes_local"] < bound / 4   # every far block at rank 64 is far above what ACA stores
    ksp, text = set_up({"greenpc_format": "hmatrix", "greenpc_memory_max": str(bound / 2 / 2**20)}, N=256)
    assert text is None, text
    limited = ksp.getPC().getPythonContext().summary()
    assert re.fullmatch(r"ranks sampled on \d+ of \d+ far blocks", limited["estimate_basis"])
    assert free["bytes_local"] <= limited["memory_estimate"] <= bound / 2
    assert limited["entries_local"] == free["entries_local"]
    _, text = set_up({"greenpc_format": "hmatrix",
                      "greenpc_memory_max": str(0.9 * limited["memory_estimate"] / 2**20)}, N=256)
    need = re.search(r"-greenpc_format hmatrix \(needs (\S+) MiB per rank", text or "")
    assert need and float(need.group(1)) == pytest.approx(limited["memory_estimate"] / 2**20, rel=0.05), text  # rounded up


TRAIN = {"problem": "shifted1d"}
TRAIN_BAD = [
    ({"problem": "heat9d"}, "-problem 'heat9d': expected one of"),
    ({"problem": ""}, "expected one of"),
    ({"train_epochs": "1,2,3,4,5,6"}, "-train_epochs (1.0, 2.0, 3.0, 4.0, 5.0, 6.0): need one entry per"),
    ({"train_widths": "3,-3,3"}, "-train_widths '3,-3,3': expected positive numbers"),
    ({"train_epsilons": "0,0.1"}, "-train_epsilons '0,0.1': expected positive numbers"),
    ({"train_batches_per_epoch": "0"}, "-train_batches_per_epoch '0': expected a positive value"),
    ({"train_lr": "-1e-3"}, "-train_lr '-1e-3': expected a positive value"),
    ({"train_depth": "2.5"}, "-train_depth '2.5': expected an integer"),
    ({"train_param": "k2=5:1"}, "-train_param 'k2=5:1': expected LOW < HIGH"),
    ({"train_param": "k2"}, "expected NAME=LOW:HIGH[:periodic]"),
    ({"train_param": "k2=0:100"}, "cannot take 'k2' as a network input"),
    ({"train_anchor_params": "theta=0:1"}, "only for parametric models"),
    ({"train_checkpoint_steps": "-2"}, "-train_checkpoint_steps '-2': expected a value >= 0"),
]


@pytest.mark.parametrize("options,words", TRAIN_BAD, ids=[next(iter(o)) + "=" + next(iter(o.values()))
                                                          for o, _ in TRAIN_BAD])
def test_bad_trainer_options_are_refused(options, words):
    from greenpc.options import OptionError

    with pytest.raises(OptionError) as raised:
        config = train_config.from_options({**TRAIN, **options})
        config.architecture()
        config.stages()
    assert words in str(raised.value), raised.value
