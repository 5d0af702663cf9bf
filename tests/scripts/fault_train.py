"""The trainer, killed with SIGKILL at a chosen point (or not): for the resume tests.

    python tests/scripts/fault_train.py KILL [trainer options: -problem ... -train_resume ...]

KILL is one of
    none                run to the end;
    epoch:K             at the start of the K-th epoch this process runs;
    fsync:ckpt:K        inside the K-th fsync of a checkpoint's temporary file: written, not synced,
                        not renamed;
    fsync:gpc:K         the same for the weight file (the run's very last write);
    replace:K           just before the K-th rename of a temporary file onto its target;
    after:K             right after the K-th atomic write has completed.
The process kills itself (``os.kill(getpid(), SIGKILL)``: no clean-up, no atexit, as a node failure).
"""
import os
import signal
import sys

kill = sys.argv.pop(1)
kind, _, rest = kill.partition(":")
counts = {}


def die_at(key, k):
    counts[key] = counts.get(key, 0) + 1
    if counts[key] == int(k):
        os.kill(os.getpid(), signal.SIGKILL)


def install():
    from greenpc import weights
    from greenpc.train import checkpoint, loop

    if kind == "epoch":
        make_epoch = loop.make_epoch

        def counted_epochs(*args, **kwargs):
            epoch = make_epoch(*args, **kwargs)

            def run(*inputs):
                die_at("epoch", rest)
                return epoch(*inputs)
            return run
        loop.make_epoch = counted_epochs
    elif kind == "fsync":
        which, k = rest.split(":")
        fsync = os.fsync

        def counted_fsync(fd):
            name = os.readlink(f"/proc/self/fd/{fd}")
            if ".tmp-" in name and name.split(".tmp-")[0].endswith(f".{which}"):
                die_at("fsync", k)
            return fsync(fd)
        os.fsync = counted_fsync
    elif kind == "replace":
        replace = os.replace

        def counted_replace(source, target):
            die_at("replace", rest)
            return replace(source, target)
        os.replace = counted_replace
    elif kind == "after":
        atomic_write = weights.atomic_write

        def counted_write(path, data):
            atomic_write(path, data)
            die_at("after", rest)
        weights.atomic_write = checkpoint.atomic_write = counted_write
    elif kind != "none":
        raise SystemExit(f"unknown kill point {kill!r}")


if __name__ == "__main__":
    install()
    from greenpc.train.__main__ import main

    sys.exit(main(sys.argv))
