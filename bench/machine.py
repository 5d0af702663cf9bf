"""The machine the benchmarks ran on, and its limits measured in the same run.

``describe`` records what a reader needs to judge a number (CPU, cores, ranks, load average before the
run: a load above the core count means the timings were disturbed by other work). ``copy_bandwidth``
is a STREAM-style copy (PETSc's VecCopy and numpy's memcpy on arrays far larger than the caches,
counted as STREAM does: the bytes read plus the bytes written), measured on every rank at once so
ranks that share a memory bus report what they get together. ``matmul_flops`` is the dense matrix
product's rate through XLA (the backend that evaluates greenpc's network) and through numpy's BLAS.
"""
import os
import platform
import time

import numpy as np
from petsc4py import PETSc


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(comm=None):
    """Date, CPU, cores, MPI ranks, load average and library versions, as a dict."""
    comm = comm or PETSc.COMM_WORLD
    load = os.getloadavg()
    cores = os.cpu_count()
    versions = {"petsc": ".".join(map(str, PETSc.Sys.getVersion())), "numpy": np.__version__,
                "python": platform.python_version()}
    for name in ("jax", "pyamg", "scipy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(),
            "cpu": cpu_model(), "machine": platform.machine(), "cores": cores,
            "ranks": comm.getSize(), "load_average_1min": load[0],
            "disturbed": load[0] > 0.5 * cores,
            "versions": versions}


def label(info):
    """One line for logs and the README."""
    quiet = "DISTURBED: load average {:.1f} on {} cores".format(info["load_average_1min"],
                                                                info["cores"]) \
        if info["disturbed"] else f"quiet (load average {info['load_average_1min']:.1f})"
    return (f"{info['cpu']}, {info['cores']} cores, {info['ranks']} MPI rank(s), "
            f"{info['date']}, {quiet}")


def best_time(function, repeats):
    """The shortest of ``repeats`` timings of ``function()`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(comm=None, mib=256, repeats=5):
    """STREAM-style copy bandwidth in bytes/s, summed over the ranks (all copying at once).

    Each rank copies a vector of ``mib`` MiB; the bytes counted per copy are twice that (read +
    write). Returns {"petsc_vec_copy", "numpy_copy", "best", "mib_per_rank"}.
    """
    comm = comm or PETSc.COMM_WORLD
    mpi = comm.tompi4py()
    n = mib * (1 << 20) // 8
    x = PETSc.Vec().createMPI((n, PETSc.DECIDE), comm=comm)
    y = x.duplicate()
    x.set(1.0)
    y.set(0.0)
    a = np.ones(n)
    b = np.zeros(n)

    def together(copy):
        seconds = []
        for _ in range(repeats):
            mpi.Barrier()
            start = time.perf_counter()
            copy()
            mpi.Barrier()
            seconds.append(time.perf_counter() - start)
        return min(seconds)

    petsc = 2 * 8 * n * comm.getSize() / together(lambda: x.copy(y))
    numpy = 2 * 8 * n * comm.getSize() / together(lambda: np.copyto(b, a))
    for v in (x, y):
        v.destroy()
    return {"petsc_vec_copy": petsc, "numpy_copy": numpy, "best": max(petsc, numpy),
            "mib_per_rank": mib}


def matmul_flops(n=2048, repeats=3):
    """Dense n x n matrix products in FLOP/s (2 n^3 per product), float32 and float64.

    Returns {"float32": {"xla", "numpy", "best"}, "float64": {...}, "n": n}. Turns on JAX's 64-bit
    mode (needed for the float64 product).
    """
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    out = {"n": n}
    rng = np.random.default_rng(0)
    for name, dtype in (("float32", np.float32), ("float64", np.float64)):
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        product = jax.jit(jnp.dot)
        product(ja, jb).block_until_ready()
        xla = 2.0 * n ** 3 / best_time(lambda: product(ja, jb).block_until_ready(), repeats)
        np.dot(a, b)
        blas = 2.0 * n ** 3 / best_time(lambda: np.dot(a, b), repeats)
        out[name] = {"xla": xla, "numpy": blas, "best": max(xla, blas)}
    return out


def tanh_rate(n=1 << 22, repeats=3):
    """tanh evaluations per second of XLA on this machine, float32 and float64: the network's other
    limit besides multiply-adds (every hidden unit costs one tanh)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    out = {}
    for name, dtype in (("float32", jnp.float32), ("float64", jnp.float64)):
        x = jnp.linspace(-3.0, 3.0, n, dtype=dtype)
        tanh = jax.jit(jnp.tanh)
        tanh(x).block_until_ready()
        out[name] = n / best_time(lambda: tanh(x).block_until_ready(), repeats)
    return out
