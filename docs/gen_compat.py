"""The Keras compatibility reference (docs page keras-compat.md), generated from the code.

    python docs/gen_compat.py [PATH]     # print the page (or write it to PATH)

The mkdocs hook (docs/hooks.py) builds the page with `page()` at every `mkdocs build`, so it is
never committed and cannot drift. For every public name of Keras 3 (the committed snapshot
docs/keras_api.json, written by docs/keras_snapshot.py) it looks the name up in the matching cynet
namespace (`keras.layers.Dense` -> `cynet.layers.Dense`) and says:

- **supported**: cynet has it and nothing below applies;
- **partly**: cynet has it, but NOTES (hand-written, keyed by name) says how it differs, or Keras's
  constructor or function takes options cynet's does not accept (found by comparing the two
  signatures: the snapshot's names of Keras's parameters with a default against cynet's, following `**kwargs` up the class
  hierarchy, as cynet's Layer refuses unknown keyword arguments);
- **not yet**: cynet has no such name (NOT_YET may add a hint).

tests/test_docs_compat.py checks that every name the page calls supported or partly exists in cynet
and that every note is about a name of the snapshot.
"""
import importlib
import inspect
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SNAPSHOT = os.path.join(HERE, "keras_api.json")

TITLES = {
    "layers": "Layers", "ops": "Ops", "losses": "Losses", "metrics": "Metrics", "optimizers": "Optimizers",
    "optimizers.schedules": "Learning-rate schedules", "callbacks": "Callbacks", "utils": "Utilities",
    "activations": "Activations", "initializers": "Initializers", "regularizers": "Regularizers",
    "models": "Models", "saving": "Saving",
}

# How a name that cynet has differs from Keras, beyond the arguments the signature comparison finds.
NOTES = {
    "layers.LSTM": "masks skip steps as in Keras; `recurrent_dropout` as Keras 3 runs it (implementation=1: a mask "
                   "per gate)",
    "layers.GRU": "`reset_after=True` layout",
    "layers.RNN": "a Python loop over the timesteps (every step recorded on the tape; the fused SimpleRNN / LSTM / "
                  "GRU are the fast path); `constants` raises NotImplementedError; `unroll` gives the same result; "
                  "with StackedRNNCells, `return_state` returns the states flattened",
    "layers.SimpleRNNCell": "`dropout` / `recurrent_dropout` > 0 raise NotImplementedError",
    "layers.LSTMCell": "`dropout` / `recurrent_dropout` > 0 raise NotImplementedError",
    "layers.GRUCell": "`dropout` / `recurrent_dropout` > 0 raise NotImplementedError (both `reset_after` layouts)",
    "layers.MultiHeadAttention": "`attention_axes` other than the default and `use_gate=True` raise "
                                 "NotImplementedError",
    "callbacks.TensorBoard": "scalars and weight histograms, written without TensorFlow; no graph "
                             "(`write_graph` writes nothing), `write_images`, profiling and embeddings raise "
                             "NotImplementedError",
    "callbacks.BackupAndRestore": "one atomically written file of cynet's (weights, optimizer state, position); "
                                  "with an integer `save_freq` it resumes at the batch after the last backup "
                                  "(Keras restarts that epoch); at the end it removes its own files, not the "
                                  "whole `backup_dir`",
    "callbacks.SwapEMAWeights": "swaps the weights back after `predict` (Keras 3.15 leaves the moving averages in "
                                "the model there); with `swap_on_epoch`, training stopped early (stop_training "
                                "set before it runs) also ends with the averages",
    "layers.Resizing": "interpolation `bilinear` and `nearest` only; `antialias=True` raises NotImplementedError",
    "layers.RandomCrop": "at inference the centred window of the target aspect ratio resized to the target "
                         "(Keras's documented behaviour; Keras 3.15 returns the images unchanged there)",
    "layers.EinsumDense": "LoRA (`lora_rank`, `lora_alpha`) and quantization raise NotImplementedError; a subscript "
                          "repeated within one operand (a diagonal) raises NotImplementedError",
    "utils.split_dataset": "NumPy arrays and tuples/lists of them, split into the same structure of NumPy arrays "
                           "(Keras: tf.data or torch datasets); tf.data and torch datasets raise NotImplementedError",
    "layers.Lambda": "differentiable when the function is written with `cynet.ops` or NumPy operators; "
                     "`mask=` is refused; never loaded from a file (no bytecode is executed)",
    "layers.StringLookup": "a vocabulary file and `salt=` raise NotImplementedError",
    "layers.IntegerLookup": "a vocabulary file raises NotImplementedError",
    "layers.Input": "no sparse or ragged tensors (NumPy arrays only)",
    "ops.einsum": "no ellipsis (`...`) and no repeated index within one operand yet",
    "ops.pad": "`mode='constant'` only",
    "ops.normalize": "`order=2` only",
}

# Hints for names cynet does not have yet.
NOT_YET = {
    "optimizers.Adamax": "not yet (also not loadable from Keras files)",
    "optimizers.Ftrl": "not yet (also not loadable from Keras files)",
    "optimizers.Lion": "not yet (also not loadable from Keras files)",
}

# cynet base classes whose **kwargs accept only these names and refuse any other (so the walk up the
# class hierarchy stops there).
TERMINAL_KWARGS = {"cynet.layers.base.Layer": {"autocast", "batch_input_shape"}}

# Keras arguments that make no difference on cynet's CPU kernels, left out of the comparison.
IGNORED_ARGUMENTS = {"use_cudnn"}


def load_snapshot(path=SNAPSHOT):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _import_cynet():
    """cynet itself, or a clear error: a page made without it would call every name "not yet"."""
    try:
        return importlib.import_module("cynet")
    except ImportError as err:
        raise RuntimeError("docs/gen_compat.py needs cynet importable (pip install \".[docs]\" in the "
                           "environment that runs mkdocs, or PYTHONPATH=<a checkout built in place>): "
                           f"{err}") from err


def cynet_namespace(namespace):
    """The cynet module for a Keras namespace ("optimizers.schedules" -> cynet.optimizers.schedules),
    or None when cynet has no such module."""
    _import_cynet()
    try:
        return importlib.import_module(f"cynet.{namespace}")
    except ModuleNotFoundError as err:
        if err.name is not None and f"cynet.{namespace}".startswith(err.name):
            return None
        raise


def lookup(namespace, name):
    """cynet's object of that name, or None."""
    module = cynet_namespace(namespace)
    obj = getattr(module, name, None) if module is not None else None
    return None if inspect.ismodule(obj) else obj


def accepted_parameters(obj):
    """The parameter names cynet's class or function accepts, or None when it takes any keyword
    (a **kwargs that is not handed up to a constructor that refuses unknown ones)."""
    if inspect.isclass(obj):
        names = set()
        for klass in obj.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            try:
                params = inspect.signature(init).parameters.values()
            except (TypeError, ValueError):
                return None
            names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
            terminal = TERMINAL_KWARGS.get(f"{klass.__module__}.{klass.__qualname__}")
            if terminal is not None:
                return names | terminal
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                return names
        return None
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def missing_arguments(keras_params, obj):
    """Keras's explicit arguments that cynet's `obj` does not accept."""
    if not keras_params or obj is None or not callable(obj):
        return []
    accepted = accepted_parameters(obj)
    if accepted is None:
        return []
    return [p for p in keras_params if p not in accepted and p not in IGNORED_ARGUMENTS]


def entries(snapshot):
    """(namespace, name, status, note) for every Keras name, in the snapshot's order."""
    for namespace, names in snapshot["namespaces"].items():
        for name in names:
            key = f"{namespace}.{name}"
            obj = lookup(namespace, name)
            if obj is None:
                yield namespace, name, "not yet", NOT_YET.get(key, "")
                continue
            notes = [NOTES[key]] if key in NOTES else []
            missing = missing_arguments(snapshot.get("parameters", {}).get(key), obj)
            if missing:
                notes.append("options not accepted: " + ", ".join(f"`{m}`" for m in missing))
            yield namespace, name, ("partly" if notes else "supported"), "; ".join(notes)


STATUS_MARK = {"supported": "supported", "partly": "partly", "not yet": "not yet"}


def page(snapshot=None):
    """The markdown page."""
    snapshot = snapshot or load_snapshot()
    rows = list(entries(snapshot))
    counts = {s: sum(1 for r in rows if r[2] == s) for s in STATUS_MARK}
    out = [
        "# Keras compatibility reference",
        "",
        f"Every public name of Keras {snapshot['keras_version']}'s namespaces, looked up in cynet when these docs "
        "were built (the page is generated by `docs/gen_compat.py`, so it cannot drift from the code). "
        "**supported**: cynet has it under the same name, with Keras's arguments and defaults; **partly**: "
        "cynet has it, with the differences listed (arguments found by comparing the two signatures, and "
        "hand-written notes); **not yet**: cynet has no such name. A Keras feature that cynet does not support "
        "raises `NotImplementedError` naming it; it is never silently ignored.",
        "",
        f"In all: {counts['supported']} supported, {counts['partly']} partly, {counts['not yet']} not yet, "
        f"of {len(rows)} names.",
        "",
    ]
    for namespace in snapshot["namespaces"]:
        part = [r for r in rows if r[0] == namespace]
        n_have = sum(1 for r in part if r[2] != "not yet")
        out += [f"## {TITLES.get(namespace, namespace)} (`keras.{namespace}`)", "",
                f"{n_have} of {len(part)} in `cynet.{namespace}`.", "",
                "| name | status | differences from Keras |", "|---|---|---|"]
        for _, name, status, note in part:
            out.append(f"| `{name}` | {status} | {note.replace('|', '&#124;')} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    text = page()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text)
