"""Independent parts of a benchmark, run as subprocesses side by side: at most ``jobs`` at once, each
single-threaded and, when there are enough cores, pinned to a core of its own (two parts never share a
core, so one part's timings are not another's). Parts start in the order given (longest first is best);
of the ``exclusive`` ones (those that need much of the memory) at most one runs at a time."""
import os
import subprocess
import time

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def run(parts, jobs, folder, log=print, exclusive=()):
    """Run ``parts`` (name -> argv) with at most ``jobs`` at once, and at most one of ``exclusive``;
    each one's output goes to ``folder/NAME.log`` and is printed when it ends. Returns
    {name: (exit status, seconds)}."""
    os.makedirs(folder, exist_ok=True)
    cores = sorted(os.sched_getaffinity(0))
    pin = jobs <= len(cores)
    env = {**os.environ, **SINGLE_THREAD}
    pending, running, done = list(parts.items()), {}, {}
    free = list(range(jobs))
    def startable():
        busy = any(name in exclusive for name, *_ in running.values())
        return [i for i, (name, _) in enumerate(pending) if not (busy and name in exclusive)]

    while pending or running:
        while free and startable():
            slot = free.pop(0)
            name, argv = pending.pop(startable()[0])
            handle = open(os.path.join(folder, f"{name}.log"), "w")
            core = {cores[slot]} if pin else None
            process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                       preexec_fn=(lambda: os.sched_setaffinity(0, core)) if pin else None)
            running[slot] = (name, process, handle, time.perf_counter())
            log(f"[part {name} started{f' on core {cores[slot]}' if pin else ''}]")
        time.sleep(0.5)
        for slot, (name, process, handle, started) in list(running.items()):
            if process.poll() is None:
                continue
            handle.close()
            seconds = time.perf_counter() - started
            done[name] = (process.returncode, seconds)
            with open(os.path.join(folder, f"{name}.log")) as output:
                text = output.read().rstrip()
            status = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
            log(f"[part {name} {status} in {seconds:.0f} s]\n{text}")
            del running[slot]
            free.append(slot)
    return done
