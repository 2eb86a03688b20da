"""Data-parallel throughput of the small MNIST CNN on 1 and K MPI ranks, and the Allreduce share.

    python bench/distributed.py [--ranks 1 2] [--threads 1] [--epochs 2] [--batch 64]

Each configuration is a fresh job of K ranks (the command of `python -m cynet.distributed.run -n K`) training the CNN of
bench/test_training.py on the same 10,000 MNIST-shaped samples with `batch` samples per rank (the
global batch is K times larger), `threads` kernel threads per rank. After one warm-up epoch, rank
0 times `epochs` epochs of `model.fit` and reports samples per second and the share of the step
spent in the gradient Allreduce (summed over the steps, rank 0's clock). Needs mpi4py and mpirun.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _rank_main(args):
    sys.path.insert(0, HERE)
    import test_training as T

    import cynet
    import cynet.distributed as dist
    dist.init(threads=args.threads)
    x, y, _ = T._data("cnn")
    model = T._cynet_model("cnn")
    model.compile(optimizer=dist.DistributedOptimizer("adam"), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)           # warm-up
    opt = model.optimizer
    opt.allreduce_seconds = 0.0
    dist.barrier()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=0)
    elapsed = time.perf_counter() - t0
    if dist.rank() == 0:
        print(json.dumps({"ranks": dist.size(), "threads": cynet.kernels.get_num_threads(),
                          "samples_per_s": args.epochs * len(x) / elapsed, "epoch_s": elapsed / args.epochs,
                          "allreduce_share": opt.allreduce_seconds / elapsed,
                          "gradient_bytes": int(opt._fused.nbytes)}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=1, help="kernel threads per rank")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="samples per rank per step")
    p.add_argument("--rank-main", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rank_main:
        return _rank_main(args)
    from cynet.distributed import run as launcher
    print(f"small CNN, 10,000 samples, batch {args.batch} per rank, {args.threads} thread(s) per rank")
    print("| ranks | global batch | epoch s | samples/s | speedup | Allreduce share | gradient KiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    base = None
    for k in args.ranks:
        cmd = launcher.command(k, os.path.abspath(__file__), ["--rank-main", "--threads", str(args.threads),
                                                              "--epochs", str(args.epochs), "--batch", str(args.batch)],
                               mpirun=shutil.which("mpirun") or "mpirun")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {k} | failed: {done.stderr.strip()[-400:]} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        base = base or r["samples_per_s"]
        print(f"| {k} | {k * args.batch} | {r['epoch_s']:.3f} | {r['samples_per_s']:.0f} | "
              f"{r['samples_per_s'] / base:.2f}x | {100 * r['allreduce_share']:.1f}% | {r['gradient_bytes'] / 1024:.0f} |")


if __name__ == "__main__":
    main()
