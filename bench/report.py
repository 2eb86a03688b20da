"""Print the speedup table from a pytest-benchmark JSON file.

    pytest bench --benchmark-only --benchmark-json=bench.json
    python bench/report.py bench.json

Speedup = median(numpy) / median(cython), per benchmark group.
"""
import json
import sys


def rows(data):
    groups = {}
    for b in data["benchmarks"]:
        backend = (b.get("params") or {}).get("backend") or b.get("extra_info", {}).get("backend")
        if backend:
            groups.setdefault(b["group"] or b["name"], {})[backend] = b["stats"]["median"] * 1e3
    for group in sorted(groups):
        t = groups[group]
        if "numpy" in t and "cython" in t:
            yield group, t["numpy"], t["cython"], t["numpy"] / t["cython"]


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        data = json.load(f)
    info = data.get("machine_info", {}).get("cynet", {})
    if info:
        print(f"threads={info.get('threads')} openmp={info.get('openmp')} blas={info.get('blas')}\n")
    print("| group | numpy ms | cython ms | speedup |")
    print("|---|---:|---:|---:|")
    for group, n, c, s in rows(data):
        print(f"| {group} | {n:.2f} | {c:.2f} | {s:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
