"""Every ``-greenpc_*`` option of the preconditioner, in one table with its default.

With a KSP prefix ``inner_`` the options read are ``-inner_greenpc_*``.
"""
from ..kernels.base import GATE_TOL
from ..options import Option, fraction, fraction_or_zero, non_negative, positive

FORMATS = ("auto", "dense", "sparse", "hmatrix")
COMPRESSORS = ("auto", "aca", "nystrom", "nystrom_nearest", "chebyshev")
FALLBACKS = ("error", "dense", "sparse", "none")


def _eta(value):
    return None if value > 0 else "expected eta > 0 (or inf)"


def _params(text):
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            return "expected NAME=VALUE[,NAME=VALUE]"
        try:
            float(value)
        except ValueError:
            return f"{value!r} is not a number"
    return None


SPECS = (
    Option("weights", str, "", "trained weight file (.gpc), or the name of a shipped model"),
    Option("kernel", str, "", "closed-form Green's function instead of weights: poisson1d, "
           "shifted1d, poisson2d, helmholtz2d"),
    Option("param", str, "", "model parameters NAME=VALUE[,NAME=VALUE] (e.g. theta=0.5)",
           check=_params),
    Option("precision", "choice", "single", "network evaluation precision",
           choices=("single", "double")),
    Option("gate_tol", float, GATE_TOL, "leave out the DD experts of a parametric model (a gate over "
           "the parameters) whose gate weights sum to at most this (0: evaluate all)",
           check=fraction_or_zero),
    Option("format", "choice", "auto", "dense, sparse (section 4), hmatrix, or auto (eq. 42 "
           "decay test)", choices=FORMATS),
    Option("dense_max", int, 4096, "auto chooses dense only up to this many points, or instead the "
           "Chebyshev H-matrix when it evaluates fewer kernel entries (the same iterations at N = 32-64 "
           "in 2D)",
           check=non_negative),
    Option("decay_tol", float, 1e-2, "eq. 42: kernel is local when max off-radius entry / row max "
           "< tol", check=fraction),
    Option("decay_radius", float, 0.0, "eq. 42 radius r (0: the sparse radius)", check=non_negative),
    Option("decay_rows", int, 64, "rows sampled by the decay test", check=positive),
    Option("sparse_nnz", int, 0, "entries kept per row: the p largest within the radius (0: all)",
           check=non_negative),
    Option("sparse_radius", float, 0.0, "radius of the sparse pattern (0: 3 mesh spacings)",
           check=non_negative),
    Option("hmat_leaf_size", int, 0, "largest cluster-tree leaf (0: paper's rule)",
           check=non_negative),
    Option("hmat_eta", float, 0.0, "admissibility eta of eq. 43 (0: 1 in 1D; in 2D/3D 1.5 with the "
           "chebyshev compressor, 0.7 with the others; inf: every pair of distinct clusters is "
           "admissible, as 1D Green's functions allow)",
           check=lambda v: None if v == 0 else _eta(v), allow_infinite=True),
    Option("hmat_compressor", "choice", "auto", "low-rank compressor (chebyshev: interpolation at the "
           "clusters' Chebyshev points, p^2d kernel evaluations per far block; auto: chebyshev in 2D, aca "
           "in 1D and 3D and for an oscillating kernel, a Helmholtz kernel with k2 > 0 whose oscillation "
           "is not split off)", choices=COMPRESSORS),
    Option("hmat_cheb_order", int, 4, "Chebyshev points per axis of -greenpc_hmat_compressor chebyshev "
           "(p^d basis functions per cluster, which all of its far blocks share, and a p^d x p^d core "
           "per block)", check=positive),
    Option("hmat_rank", int, 0, "fixed rank (0: tolerance-based, or the paper's rule with "
           "-greenpc_hmat_rank_rule; chebyshev's is p^d)", check=non_negative),
    Option("hmat_rank_rule", bool, False, "the paper's rank rule (section 5.3)"),
    Option("hmat_exact_split", bool, True, "store a split model's low-rank part (a Helmholtz model's "
           "resonant modes) exactly beside the H-matrix, which then compresses the network's part alone "
           "(0: compress the whole kernel)"),
    Option("hmat_tol", float, 1e-4, "relative tolerance of ACA and of adaptive ranks", check=fraction),
    Option("hmat_split_tol", float, 1e-2, "ACA's tolerance of the network's part when the split-off part "
           "is stored exactly (-greenpc_hmat_exact_split): helmholtz2d at N = 128, k2 = 300 took 15 "
           "iterations by ACA with 1e-2 and with 1e-4, from 53M and 146M kernel evaluations, and 15 by "
           "Chebyshev (the 2D default) from 10.5M", check=fraction),
    Option("hmat_max_rank", int, 64, "largest rank of an admissible block (aca, nystrom; chebyshev's is "
           "p^d)", check=positive),
    Option("hmat_rank_samples", int, 8, "far blocks per size that ACA compresses first to estimate the "
           "memory when every block at -greenpc_hmat_max_rank would pass -greenpc_memory_max",
           check=positive),
    Option("check_samples", int, 256, "random entries compared with direct kernel evaluation",
           check=non_negative),
    Option("check_tol", float, 0.0, "largest accepted mean relative entry error (0: report only)",
           check=non_negative),
    Option("check_fallback", "choice", "error", "when the check fails: error, or rebuild as dense "
           "or sparse", choices=FALLBACKS),
    Option("memory_max", float, 8192.0, "largest memory of the preconditioner per rank (MiB)",
           check=positive),
    Option("symmetric", bool, False, "build from (G(x,y) + G(y,x)) / 2 (for CG)"),
    Option("wall_correction", bool, False, "subtract from G(., y) the interpolant of its values on the "
           "walls of the box (1D, 2D), so that it meets the Dirichlet condition exactly (helps react2d, "
           "hurts conv2d: measure)"),
    Option("diagonal_fit", bool, True, "choose each diagonal entry so that (s A M)_jj = 1"),
    Option("scale", float, 0.0, "fixed scale s of M (0: least-squares fit at set-up)",
           check=non_negative),
    Option("scale_vectors", int, 4, "random vectors of the scale fit and the quality estimate",
           check=positive),
    Option("smooth_its", int, 0, "symmetric SOR sweeps on the residual after each kernel product "
           "(0: none; 2 is multiplicative -pc_composite_pcs python,sor with -sub_1_pc_sor_its 2)",
           check=non_negative),
    Option("smooth_omega", float, 1.0, "relaxation factor of those sweeps",
           check=lambda v: None if 0 < v < 2 else "expected 0 < omega < 2"),
    Option("seed", int, 0, "seed of the random vectors and samples", check=non_negative),
    Option("view_partition", str, "", "save a drawing of the H-matrix block partition (PNG)"),
)


def parse_params(text):
    """NAME=VALUE,... -> {name: float}."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        out[name.strip()] = float(value)
    return out

