"""Peak memory of one training epoch of the small MNIST CNN: cynet next to PyTorch.

    python bench/memory.py [--threads 1] [--workload cnn|mlp|char_lstm]

Each framework runs in a fresh subprocess that imports itself, builds the model and the data
of bench/test_training.py, notes its resident set size (RSS), trains one epoch and reports the
peak RSS of the process (getrusage). "added by training" is peak minus the RSS before the
epoch: activations, gradients, optimizer state and workspaces. PyTorch is skipped when it is
not installed. Linux (reads /proc/self/status).
"""
import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _child(framework, workload, threads):
    sys.path.insert(0, HERE)
    import test_training as T  # the benchmark's models and data, so both measure the same thing

    import cynet
    cynet.set_num_threads(threads)
    x, y, batch = T._data(workload)
    if framework == "cynet":
        model = T._cynet_model(workload)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        before = _rss_mib()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    else:
        import torch
        torch.set_num_threads(threads)
        model = T._torch_model(torch, workload)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(len(y), -1).squeeze(1)
        if workload == "cnn":
            xt = xt.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
            model = model.to(memory_format=torch.channels_last)
        optimizer, loss_fn = torch.optim.Adam(model.parameters()), torch.nn.CrossEntropyLoss()
        before = _rss_mib()
        for start in range(0, len(xt), batch):
            optimizer.zero_grad()
            loss_fn(model(xt[start:start + batch]), yt[start:start + batch].reshape(-1)).backward()
            optimizer.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before": before, "peak": peak}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workload", default="cnn", choices=["cnn", "mlp", "char_lstm"])
    p.add_argument("--child", choices=["cynet", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return _child(args.child, args.workload, args.threads)
    print(f"one epoch of '{args.workload}', {args.threads} thread(s); MiB")
    print("| framework | RSS before the epoch | peak RSS | added by training |")
    print("|---|---:|---:|---:|")
    for framework in ("cynet", "torch"):
        cmd = [sys.executable, "-P", os.path.abspath(__file__), "--child", framework,
               "--workload", args.workload, "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            reason = "not installed" if "No module named 'torch'" in done.stderr else done.stderr.strip()[-300:]
            print(f"| {framework} | — | — | {reason} |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {framework} | {r['before']:.0f} | {r['peak']:.0f} | {r['peak'] - r['before']:.0f} |")


if __name__ == "__main__":
    main()
