"""Quality report of a weight file: the learned G against (L_h^{-1}) / h^d on an n-point grid.

    python -m greenpc.evaluate -weights react1d.gpc -N 256 [-param theta=0.5] [-plot slices.png]

Prints the relative error overall, near the diagonal (|x - y| <= 3h) and away from it; ``-plot`` saves
slices G(., y) against the discrete inverse for a few sources y (the paper's figures 1, 5 and 13).
"""
import sys

import numpy as np

from . import models, problems, weights
from .kernels.base import GATE_TOL
from .kernels.learned import LearnedKernel
from .options import Option, fraction_or_zero, positive, read

SPECS = (
    Option("weights", str, "", "weight file or shipped model name"),
    Option("N", int, 256, "interior points per direction of the reference grid", check=positive),
    Option("param", str, "", "parameters NAME=VALUE[,NAME=VALUE] of a parametric model"),
    Option("plot", str, "", "save slices of the kernel against the discrete inverse (PNG)"),
    Option("near", float, 3.0, "near-diagonal band |x - y| <= near * h", check=positive),
    Option("gate_tol", float, GATE_TOL, "leave out the DD experts a gate over the parameters weighs "
           "with at most this in all (as -greenpc_gate_tol; 0: evaluate all)",
           check=fraction_or_zero),
)


def reference(model, values, N):
    """Grid points and (L_h^{-1}) / h^d of the model's problem on the N-point grid."""
    problem = problems.get(model.problem["name"])
    params = {**model.problem.get("params", {}), **values}
    grid = problems.Grid(problem.dim, N)
    operator = problems.assemble_scipy(problem, grid, params)
    inverse = np.linalg.inv(operator.toarray()) / grid.h ** grid.dim
    return grid, grid.coordinates(grid.all_indices()), inverse


def errors(kernel, model, N, near=3.0):
    """Relative Frobenius errors of the kernel matrix overall, near and away from the diagonal."""
    grid, points, exact = reference(model, kernel.values, N)
    if kernel.uses_spacing:
        kernel.spacing = grid.h
    learned = kernel.block(points, points)
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    band = distance <= near * grid.h + 1e-12

    def relative(mask):
        return float(np.linalg.norm((learned - exact)[mask]) / np.linalg.norm(exact[mask]))

    everything = np.ones_like(band)
    return {"overall": relative(everything), "near": relative(band), "far": relative(~band),
            "points": len(points)}, (grid, points, learned, exact)


def plot_slices(path, model, grid, points, learned, exact, sources=(0.25, 0.5, 0.65)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sources), figsize=(4 * len(sources), 3.4), squeeze=False)
    for ax, y in zip(axes[0], sources):
        if grid.dim == 1:
            j = int(np.argmin(np.abs(points[:, 0] - y)))
            ax.plot(points[:, 0], exact[:, j], "k-", label="$(L_h^{-1})/h$")
            ax.plot(points[:, 0], learned[:, j], "r--", label="network")
            ax.set_xlabel("x")
        else:
            j = int(np.argmin(np.linalg.norm(points - [y, y], axis=1)))
            row = np.abs(points[:, 1] - points[j, 1]) < 1e-12
            ax.plot(points[row, 0], exact[row, j], "k-", label="$(L_h^{-1})/h^2$")
            ax.plot(points[row, 0], learned[row, j], "r--", label="network")
            ax.set_xlabel(f"x (y = ({points[j, 0]:.2f}, {points[j, 1]:.2f}), slice through y)")
        ax.set_title(f"G(x, y), y = {points[j].round(2).tolist()}")
        ax.legend(fontsize=8)
    fig.suptitle(f"{model.problem['name']}: learned kernel against the discrete inverse, N = {grid.N}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    import petsc4py

    petsc4py.init(sys.argv if argv is None else argv)
    from petsc4py import PETSc

    from .pc.options import parse_params

    opts = read(SPECS)
    if PETSc.Options().hasName("help") or not opts["weights"]:
        from .options import help_text

        print(help_text(SPECS, title="python -m greenpc.evaluate options:"))
        return 0
    model = weights.load(models.resolve(opts["weights"]))
    kernel = LearnedKernel(model, parse_params(opts["param"]), gate_tol=opts["gate_tol"])
    result, (grid, points, learned, exact) = errors(kernel, model, opts["N"], opts["near"])
    print(f"{kernel.describe()} on N = {opts['N']}: relative error overall {result['overall']:.3e}, "
          f"near the diagonal {result['near']:.3e}, away from it {result['far']:.3e}")
    if opts["plot"]:
        plot_slices(opts["plot"], model, grid, points, learned, exact)
        print(f"wrote {opts['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
