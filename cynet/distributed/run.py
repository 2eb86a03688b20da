"""Launch a cynet script on K local processes through mpirun:

    python -m cynet.distributed.run -n 2 train.py [script args...]

is `mpirun -n 2 --bind-to none python train.py ...` with this Python, plus the flags Open MPI
needs to start as root or with more ranks than cores. For several machines, call mpirun (or
your cluster's launcher) directly with a host file; the script is the same.
"""
import argparse
import os
import shutil
import sys


def command(n, script, args, mpirun="mpirun", extra=()):
    cmd = [mpirun, "-n", str(n), "--bind-to", "none"]
    if n > (os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd + list(extra) + [sys.executable, script] + list(args)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cynet.distributed.run",
                                     description="Run a cynet training script on N MPI processes.")
    parser.add_argument("-n", "--np", dest="n", type=int, required=True, help="number of processes (ranks)")
    parser.add_argument("--mpirun", default="mpirun", help="the MPI launcher (default: mpirun)")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    if opts.n < 1:
        parser.error(f"-n must be a positive integer; received {opts.n}")
    launcher = shutil.which(opts.mpirun)
    if launcher is None:
        parser.error(f"{opts.mpirun} was not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)")
    cmd = command(opts.n, opts.script, opts.args, mpirun=launcher)
    sys.stdout.flush()
    os.execv(launcher, cmd)


if __name__ == "__main__":
    main()
