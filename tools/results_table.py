"""The examples' results table, made from the examples' own output so it cannot go stale.

    python tools/results_table.py run results.jsonl [--threads 2] [--long]   # run every example
    python tools/results_table.py table results.jsonl [--write docs/examples.md]

`run` runs each example of ROWS as `python -m cynet.examples NAME ... --results FILE` (in a
subprocess, from outside the checkout's parent so the installed package runs unless PYTHONPATH
says otherwise), once as given and, where the row has one, again for 3 epochs with
`--backend numpy`, and appends every run's JSON line (what `--results` writes, plus the row's
label) to the output file. `--long` adds the LSTM(256) on Tiny Shakespeare (minutes). MNIST and the
texts come from $CYNET_DATA_DIR; the tables need scikit-learn (the `examples` extra).

Rows marked for mixed precision run a third time with `--dtype-policy mixed_bfloat16`; those runs
make the second table, float32 against mixed_bfloat16 on the same example.

`table` renders the markdown tables from such a file; with `--write PAGE` it replaces the part of
PAGE between the markers `<!-- results-table:start -->` and `<!-- results-table:end -->` with the
results table and the part between `<!-- mixed-precision-table:start -->` and
`<!-- mixed-precision-table:end -->` with the mixed precision table (a page has one pair or both).
tests/test_docs_results.py checks that the committed pages' tables are what `table` renders from
the committed docs/results/examples.jsonl.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
MIXED_START, MIXED_END = "<!-- mixed-precision-table:start -->", "<!-- mixed-precision-table:end -->"
MIXED = "mixed_bfloat16"

SHAKESPEARE = ["char_rnn", "--cell", "lstm", "--text", "tinyshakespeare.txt", "--units", "256", "--epochs", "5",
               "--max-chars", "500000", "--validation-split", "0.1"]

# (label, example argv, numpy comparison: run again with --backend numpy --epochs 3, long run,
#  mixed precision: run again with --dtype-policy mixed_bfloat16)
ROWS = [
    ("`quickstart` (15 epochs)", ["quickstart"], True, False, False),
    ("`mnist_mlp` (20 epochs)", ["mnist_mlp"], True, False, False),
    ("`mnist_cnn` (15 epochs)", ["mnist_cnn"], True, False, True),
    ("`mnist_convnet` (12 epochs)", ["mnist_convnet"], True, False, True),
    ("`manual_loop` (20 epochs)", ["manual_loop"], True, False, False),
    ("`char_rnn --cell simple_rnn` (20 epochs)", ["char_rnn", "--cell", "simple_rnn"], True, False, False),
    ("`char_rnn --cell lstm` (20 epochs)", ["char_rnn", "--cell", "lstm"], True, False, False),
    ("`char_rnn --cell gru` (20 epochs)", ["char_rnn", "--cell", "gru"], True, False, False),
    ("`tabular` (50 epochs)", ["tabular"], True, False, False),
    ("`char_rnn --cell lstm --units 256` on Tiny Shakespeare (5 epochs)", SHAKESPEARE, False, True, True),
]


def command(argv, threads, results):
    return [sys.executable, "-m", "cynet.examples", *argv, "--verbose", "0", "--threads", str(threads),
            "--results", results]


def run(out, threads, long, only=None):
    """Run the rows' examples and append their records (with "row" and "role") to `out`."""
    for label, argv, numpy_too, is_long, mixed_too in ROWS:
        if (is_long and not long) or (only and argv[0] not in only):
            continue
        variants = [("cython", argv)] + ([("numpy", argv + ["--backend", "numpy", "--epochs", "3"])] if numpy_too else [])
        variants += [(MIXED, argv + ["--dtype-policy", MIXED])] if mixed_too else []
        for role, args in variants:
            with tempfile.TemporaryDirectory() as tmp:
                results = os.path.join(tmp, "run.jsonl")
                cmd = command(args, threads, results)
                print("$", " ".join(cmd[1:]), flush=True)
                subprocess.run(cmd, check=True, cwd=tmp, stdout=subprocess.DEVNULL)
                with open(results, encoding="utf-8") as f:
                    record = json.loads(f.readline())
            record.update(row=label, role=role, command="cynet-examples " + " ".join(args),
                          load_average=_load_average(), cpus=os.cpu_count())
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def _load_average():
    """The machine's 1-minute load average when the run ended (None where the OS cannot say):
    the table states it, because other processes on the machine slow every epoch."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def load(path):
    """{(row, role): record}; a later line for the same row and role wins."""
    records = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                records[(record["row"], record["role"])] = record
    return records


def _accuracy(record):
    """The accuracy cell: held-out accuracy, or training accuracy for char_rnn, or the tabular pairs."""
    results = record["results"]
    if record["example"] == "char_rnn":
        if "val_loss" in record["history"]:
            losses = record["history"]["val_loss"]
            return f"val loss {losses[0]:.2f} → {losses[-1]:.2f}"
        return f"{results['accuracy']:.3f} (train)"
    if record["example"] == "tabular":
        return None
    return f"{results['test accuracy']:.3f}"


def _seconds(record, key=None):
    if record is None:
        return "—"
    seconds = record["seconds_per_epoch"] if key is None else record["seconds_per_epoch_by_run"][key]
    return f"{seconds:.3f}" if seconds < 0.1 else f"{seconds:.2f}"


def rows(records):
    """The table's rows, in ROWS order, for the rows that have a record."""
    for label, *_ in ROWS:
        main, numpy = records.get((label, "cython")), records.get((label, "numpy"))
        if main is None:
            continue
        if main["example"] == "tabular":
            for data, name in (("breast_cancer", "breast cancer"), ("wine", "wine")):
                r = main["results"]
                cell = f"{r[data + ' crossentropy']:.3f} / {r[data + ' mean_squared_error']:.3f}"
                key = f"{data} crossentropy"
                yield (f"`tabular`: {name}, cross-entropy + Adam / MSE + SGD ({main['epochs']} epochs)", cell,
                       _seconds(main, key), _seconds(numpy, key))
        else:
            yield label, _accuracy(main), _seconds(main), _seconds(numpy)


def table(records):
    """The markdown table and, under it, the commands and settings it came from."""
    lines = ["| example | accuracy | s/epoch, cython | s/epoch, numpy path |", "|---|---:|---:|---:|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows(records)]
    threads = sorted({r["threads"] for r in records.values()})
    loads = [r["load_average"] for r in records.values() if r.get("load_average") is not None]
    cpus = sorted({r["cpus"] for r in records.values() if r.get("cpus")})
    counted = "" if len(loads) == len(records) else f" (recorded for {len(loads)} of {len(records)} runs)"
    load_note = (f" Load average of the machine at the end of the runs: {min(loads):.1f} to {max(loads):.1f}"
                 f"{counted} on {', '.join(map(str, cpus))} CPUs (a load above the thread count means other processes shared "
                 "the cores and the times are inflated)." if loads else " The machine's load was not recorded.")
    missing = [label for label, *_ in ROWS if (label, "cython") not in records]
    if missing:
        lines += ["", "Not in these records (not run yet): " + "; ".join(missing) + "."]
    lines += ["", f"Threads: {', '.join(map(str, threads))}.{load_note} Commands (each also run with "
              "`--backend numpy --epochs 3` for the numpy column):", "", "```bash"]
    lines += [_command(records[key]) for key in sorted(records, key=_order) if key[1] == "cython"]
    lines += ["```"]
    return "\n".join(lines)


def mixed_table(records):
    """float32 against mixed_bfloat16 on the rows that ran both: accuracy and time per epoch."""
    lines = [f"| example | accuracy, float32 | accuracy, {MIXED} | s/epoch, float32 | s/epoch, {MIXED} |",
             "|---|---:|---:|---:|---:|"]
    pairs = [(label, records[(label, "cython")], records[(label, MIXED)])
             for label, *_, mixed_too in ROWS if mixed_too and (label, MIXED) in records and (label, "cython") in records]
    lines += [f"| {label} | {_accuracy(f32)} | {_accuracy(bf16)} | {_seconds(f32)} | {_seconds(bf16)} |"
              for label, f32, bf16 in pairs]
    if not pairs:
        return "\n".join(lines + ["", f"Not in these records (not run yet): the {MIXED} runs."])
    paths = sorted({str(bf16.get("bf16_path")) for *_, bf16 in pairs})
    threads = sorted({r["threads"] for _, f32, bf16 in pairs for r in (f32, bf16)})
    lines += ["", f"Threads: {', '.join(map(str, threads))}; bfloat16 product path: {', '.join(paths)} "
              "(`cynet.kernels.info()['bf16']`). Commands (the float32 runs are those of the results table):",
              "", "```bash"]
    lines += [_command(bf16) for *_, bf16 in pairs] + ["```"]
    return "\n".join(lines)


def _command(record):
    """The command line that produced a record (the runner adds --verbose 0 and --threads)."""
    threads = (record.get("settings") or {}).get("threads")
    return record["command"] + " --verbose 0" + (f" --threads {threads}" if threads else "")


def _order(key):
    labels = [label for label, *_ in ROWS]
    return (labels.index(key[0]) if key[0] in labels else len(labels), key[1])


def replace_between_markers(text, body, start=START, end=END):
    """`text` with the part between `start` and `end` replaced by `body`."""
    if start not in text or end not in text:
        raise ValueError(f"the page has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def write_tables(text, records):
    """`text` with each table whose markers it holds rendered from `records` (at least one)."""
    found = False
    for (start, end), render in (((START, END), table), ((MIXED_START, MIXED_END), mixed_table)):
        if start in text:
            text, found = replace_between_markers(text, render(records), start, end), True
    if not found:
        raise ValueError(f"the page has neither {START} nor {MIXED_START} markers")
    return text


def main(argv=None):
    p = argparse.ArgumentParser(prog="python tools/results_table.py", description=__doc__.strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the examples and append their records to FILE")
    r.add_argument("file")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--long", action="store_true", help="also the LSTM(256) on Tiny Shakespeare")
    r.add_argument("--only", nargs="*", help="only these examples (names)")
    t = sub.add_parser("table", help="render the table from FILE")
    t.add_argument("file")
    t.add_argument("--write", metavar="PAGE", help="replace the table between the markers in PAGE")
    args = p.parse_args(argv)
    if args.command == "run":
        run(args.file, args.threads, args.long, args.only)
        return 0
    records = load(args.file)
    if args.write:
        with open(args.write, encoding="utf-8") as f:
            text = f.read()
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(write_tables(text, records))
    else:
        print(table(records) + "\n\n" + mixed_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
