"""Print the comparison table from a pytest-benchmark JSON file.

    pytest bench --benchmark-only [--threads N] --benchmark-json=bench.json
    python bench/report.py bench.json [more.json ...]   # several runs merge, later ones win

One row per benchmark group: median milliseconds of the NumPy twins, the compiled kernels and,
where the run had PyTorch installed, PyTorch on the same thread count; then
speedup = numpy / cython and cynet/PyTorch = cython / torch (below 1: cynet is faster).

Benchmark names use the words of the groups: `fwd` and `fwd_bwd` (groups "... fwd", "... fwd+bwd"),
so `pytest bench -k "conv2d and fwd_bwd and not torch"` selects the conv2d forward+backward rows.
"""
import argparse
import json
import sys

BACKENDS = ("numpy", "cython", "torch")


def rows(data):
    """(group, {backend: median ms}) for every group that has the cython backend."""
    groups = {}
    for b in data["benchmarks"]:
        backend = (b.get("params") or {}).get("backend") or b.get("extra_info", {}).get("backend")
        if backend in BACKENDS:
            groups.setdefault(b["group"] or b["name"], {})[backend] = b["stats"]["median"] * 1e3
    for group in sorted(groups):
        if "cython" in groups[group]:
            yield group, groups[group]


def _ms(t, backend):
    return f"{t[backend]:.2f}" if backend in t else "—"


def table(data):
    lines = []
    info = data.get("machine_info", {})
    cy, th = info.get("cynet", {}), info.get("torch")
    head = f"threads={cy.get('threads')} openmp={cy.get('openmp')} blas={cy.get('blas')}"
    if th:
        head += f" torch={th['version']} (threads={th['threads']})"
    lines += [head, ""]
    all_rows = list(rows(data))
    with_torch = any("torch" in t for _, t in all_rows)
    cols = ["group", "numpy ms", "cython ms"] + (["PyTorch ms"] if with_torch else []) + ["numpy/cython"]
    cols += ["cython/PyTorch"] if with_torch else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|---|" + "---:|" * (len(cols) - 1))
    for group, t in all_rows:
        cells = [group, _ms(t, "numpy"), _ms(t, "cython")] + ([_ms(t, "torch")] if with_torch else [])
        cells.append(f"{t['numpy'] / t['cython']:.1f}x" if "numpy" in t else "—")
        if with_torch:
            cells.append(f"{t['cython'] / t['torch']:.2f}" if "torch" in t else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge(runs):
    """One report from several runs (e.g. cynet and PyTorch measured in separate processes)."""
    merged = {"benchmarks": [], "machine_info": {}}
    for data in runs:
        merged["benchmarks"] += data["benchmarks"]
        for key in ("cynet", "torch"):
            if key in data.get("machine_info", {}):
                merged["machine_info"][key] = data["machine_info"][key]
    return merged


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python bench/report.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.strip())
    p.add_argument("json", nargs="+", metavar="JSON",
                   help="pytest-benchmark JSON files (--benchmark-json); later files win for the same benchmark")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs = []
    for path in args.json:
        try:
            with open(path) as f:
                runs.append(json.load(f))
        except (OSError, ValueError) as err:
            print(f"report.py: cannot read {path}: {err}", file=sys.stderr)
            return 2
    print(table(merge(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
