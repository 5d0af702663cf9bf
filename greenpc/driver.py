"""Solve a preset on a DMDA with FGMRES in the paper's protocol, for one or several preconditioners.

The protocol (section 5): FGMRES(50), relative tolerance 1e-6, at most 500 iterations, right-hand sides
uniform in [-0.5, 0.5] from a fixed seed, zero initial guess. Every choice is a PETSc option; PETSc's own
``-ksp_*`` and ``-pc_*`` options override the protocol's defaults.
"""
import json
import time

import numpy as np
from petsc4py import PETSc

from . import problems
from .problems import dmda
from .options import Option, help_text, non_negative, positive, read


def sweep_counts(text):
    """'1,2' -> [1, 2]: the numbers of SOR sweeps of -smoothing (a ValueError says what was expected)."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not all(w.isdigit() for w in words):
        raise ValueError("expected comma-separated numbers of sweeps (e.g. 2 or 1,2)")
    return [int(w) for w in words]


def check_sweeps(text):
    """An Option check for sweep counts: None, or the ValueError of ``sweep_counts``."""
    sweep_counts(text)


SPECS = (
    Option("problem", "choice", "poisson2d", "the PDE preset", choices=tuple(problems.names())),
    Option("N", int, 64, "interior points per direction (h = 1/(N+1))", check=positive),
    Option("form", "choice", "interior", "interior unknowns only, or boundary rows kept",
           choices=problems.FORMS),
    Option("scaling", "choice", "operator", "rows as stencil/h^2 (operator) or times h^d (hd)",
           choices=problems.SCALINGS),
    Option("nrhs", int, 3, "number of random right-hand sides", check=positive),
    Option("seed", int, 0, "seed of the first right-hand side (the k-th uses seed + k)",
           check=non_negative),
    Option("compare", str, "", "comma-separated preconditioners solved in turn on the same matrix "
           "and right-hand sides: " + ",".join(["none", "jacobi", "sor", "ilu", "gamg", "amg",
                                                "gamg-shifted", "lu", "greenpc"]) + " (gamg-shifted: "
           "GAMG on the shifted Laplacian, the reaction's sign flipped, as preconditioning matrix)"),
    Option("summary_json", str, "", "write the results to this JSON file"),
    Option("smoothing", str, "", "with greenpc: also solve with these numbers of SOR sweeps after "
           "the kernel product (e.g. 2), reusing the same set-up (-greenpc_smooth_its)",
           check=check_sweeps),
)

PROTOCOL = {"ksp_type": "fgmres", "ksp_gmres_restart": "50", "ksp_rtol": "1e-6",
            "ksp_max_it": "500"}


def peer_options(name, size):
    """Options that select the named preconditioner on ``size`` ranks."""
    serial = size == 1
    table = {
        "none": {"pc_type": "none"},
        "jacobi": {"pc_type": "jacobi"},
        "sor": {"pc_type": "sor"},
        "ilu": {"pc_type": "ilu"} if serial else {"pc_type": "bjacobi", "sub_pc_type": "ilu"},
        "gamg": {"pc_type": "gamg"},
        "gamg-shifted": {"pc_type": "gamg"},
        "amg": {"pc_type": "python", "pc_python_type": "greenpc.amg.ClassicalAMG"},
        "lu": {"pc_type": "lu"} if serial else {"pc_type": "redundant", "redundant_pc_type": "lu"},
        "greenpc": {"pc_type": "python", "pc_python_type": "greenpc.GreenPC"},
    }
    if name not in table:
        raise ValueError(f"-compare: unknown preconditioner {name!r}; choose from {', '.join(table)}")
    return table[name]


class pushed_options:
    """Set options for the duration of a block, restoring what was there before."""

    def __init__(self, values, override=True):
        self.values, self.override, self.saved = values, override, {}

    def __enter__(self):
        db = PETSc.Options()
        for key, value in self.values.items():
            present = db.hasName(key)
            if present and not self.override:
                continue
            self.saved[key] = db.getString(key, "") if present else None
            db.setValue(key, value)
        return self

    def __exit__(self, *exc):
        db = PETSc.Options()
        for key, value in self.saved.items():
            if value is None:
                db.delValue(key)
            else:
                db.setValue(key, value)


def problem_parameters(problem):
    """The preset's own parameters from -NAME options (e.g. -theta, -k2)."""
    specs = tuple(Option(k, float, v, f"parameter {k} of {problem.name}")
                  for k, v in problem.params.items())
    return problem.resolve(read(specs))


def uses_shifted_operator(label):
    """Whether the peer ``label`` preconditions with the shifted Laplacian instead of A."""
    return label == "gamg-shifted"


def variant_label(label, its):
    """The label of ``label``'s solves with ``its`` SOR sweeps after each kernel product."""
    return f"{label}+sor{its}"


def solve_with(A, da, grid, rhs_seeds, label, comm, P=None, smoothing=()):
    """Set up a fresh KSP from the options database and solve for each right-hand side; ``P`` (default
    A) is the matrix the preconditioner is built from.

    With greenpc and ``smoothing`` (SOR sweep counts), the same set-up is solved again with each count
    (``GreenPC.set_smoothing``): ``result["variants"]`` holds ``{f"{label}+sor{its}": result}``, whose
    ``setup_s`` is the shared set-up's."""
    if uses_shifted_operator(label) and P is None:
        raise ValueError(f"{label}: needs the shifted-Laplacian matrix as P (driver.compare builds it)")
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A, A if P is None else P)
    ksp.setDM(da)
    ksp.setDMActive(PETSc.KSP.DMActive.ALL, False)
    with pushed_options(PROTOCOL, override=False):
        ksp.setFromOptions()
    start = time.perf_counter()
    ksp.setUp()
    setup = time.perf_counter() - start
    pc = ksp.getPC()
    context = pc.getPythonContext() if pc.getType() == "python" else None
    result = _solves(ksp, A, da, grid, rhs_seeds, label, setup, context)
    if smoothing and hasattr(context, "set_smoothing"):
        result["variants"] = {}
        for its in smoothing:
            context.set_smoothing(pc, its)
            name = variant_label(label, its)
            result["variants"][name] = _solves(ksp, A, da, grid, rhs_seeds, name, setup, context)
    ksp.destroy()
    return result


def _solves(ksp, A, da, grid, rhs_seeds, label, setup, context):
    iterations, reasons, residuals, solve = [], [], [], 0.0
    x, r = A.createVecRight(), A.createVecLeft()
    for seed in rhs_seeds:
        b = dmda.random_rhs(grid, da, A, seed)
        x.set(0.0)
        start = time.perf_counter()
        ksp.solve(b, x)
        solve += time.perf_counter() - start
        A.mult(x, r)
        r.aypx(-1.0, b)
        iterations.append(ksp.getIterationNumber())
        reasons.append(int(ksp.getConvergedReason()))
        residuals.append(r.norm() / b.norm())
    details = context.summary() if hasattr(context, "summary") else {}
    return {
        "pc": label, "pc_type": ksp.getPC().getType(), "ksp_type": ksp.getType(),
        "iterations": iterations, "reasons": reasons, "relative_residuals": residuals,
        "converged": all(r > 0 for r in reasons),
        "mean": float(np.mean(iterations)), "std": float(np.std(iterations)),
        "setup_s": setup, "solve_s": solve, "total_s": setup + solve, "details": details,
    }


def with_variants(results):
    """``{label: result}`` with each result's smoothing variants (``solve_with``) as labels of their own."""
    out = {}
    for label, result in results.items():
        out[label] = {k: v for k, v in result.items() if k != "variants"}
        out.update(result.get("variants", {}))
    return out


def compare(problem, grid, da, A, params, scaling, labels, rhs_seeds, comm, out=None, smoothing=()):
    """Each named peer solved in turn on A with the same right-hand sides: ``{label: result}``, with
    greenpc's smoothing variants (``solve_with``) as labels of their own.

    The shifted Laplacian (for "gamg-shifted") is assembled once, only when a peer uses it."""
    shifted = None
    if any(uses_shifted_operator(label) for label in labels):
        shifted = dmda.assemble(problems.shifted_laplacian(problem), grid, da, params, scaling)
    results = {}
    try:
        for label in labels:
            with pushed_options(peer_options(label, comm.getSize())):
                results[label] = solve_with(A, da, grid, rhs_seeds, label, comm,
                                            shifted if uses_shifted_operator(label) else None,
                                            smoothing)
            if out is not None:
                for result in with_variants({label: results[label]}).values():
                    report(result, out)
    finally:
        if shifted is not None:
            shifted.destroy()
    return with_variants(results)


def reason_name(reason):
    names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}
    return names.get(reason, str(reason))


def report(result, out):
    its = " ".join(str(i) if r > 0 else f"F({i})" for i, r in zip(result["iterations"],
                                                                  result["reasons"]))
    out(f"{result['pc']:>10s}  iterations {its:<16s} mean {result['mean']:6.1f} "
        f"std {result['std']:4.1f}  setup {result['setup_s']:8.3f} s  "
        f"solve {result['solve_s']:8.3f} s  {'' if result['converged'] else 'F (not converged)'}")


def main(argv=None):
    db = PETSc.Options()
    out = PETSc.Sys.Print
    if db.hasName("help"):
        out(help_text(SPECS, title="greenpc solve driver options:"))
    opts = read(SPECS)
    problem = problems.get(opts["problem"])
    params = problem_parameters(problem)
    grid = problems.Grid(problem.dim, opts["N"], opts["form"])
    comm = PETSc.COMM_WORLD
    da, A = dmda.build(problem, grid, params, opts["scaling"], comm)
    seeds = [opts["seed"] + k for k in range(opts["nrhs"])]
    size = comm.getSize()
    out(f"problem {problem.name}{' ' + str(params) if params else ''} N={opts['N']} form={opts['form']} "
        f"scaling={opts['scaling']} unknowns={grid.size} ranks={size}")
    runs = []
    labels = [s.strip() for s in opts["compare"].split(",") if s.strip()]
    smoothing = sweep_counts(opts["smoothing"])
    if labels:
        runs += compare(problem, grid, da, A, params, opts["scaling"], labels, seeds, comm,
                        out, smoothing).values()
    else:
        label = db.getString("pc_type", "default")
        solved = with_variants({label: solve_with(A, da, grid, seeds, label, comm, None, smoothing)})
        for result in solved.values():
            runs.append(result)
            for k, (its, reason, res) in enumerate(zip(result["iterations"], result["reasons"],
                                                       result["relative_residuals"])):
                out(f"rhs {k}: {its} iterations, {reason_name(reason)}, relative residual {res:.2e}")
            report(result, out)
    summary = {"problem": problem.name, "params": params, "N": opts["N"], "form": opts["form"],
               "scaling": opts["scaling"], "unknowns": grid.size, "ranks": size,
               "nrhs": opts["nrhs"], "seed": opts["seed"], "runs": runs,
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if opts["summary_json"] and comm.getRank() == 0:
        with open(opts["summary_json"], "w") as handle:
            json.dump(summary, handle, indent=1)
    A.destroy()
    da.destroy()
    return summary
