"""Every public class and function of cynet has a docstring, and every callable that takes arguments
documents them in a Google-style ``Args:`` section (as Keras does, so that mkdocstrings renders an
argument table): each named parameter appears there as ``name:``.

The public surface is walked, not listed: the public modules below, the names in their ``__all__`` (or
every name not starting with ``_``), and for public classes defined in cynet every public method and
property of the cynet classes in their MRO. A new public function without a docstring fails here.
"""
import importlib
import inspect
import re

import pytest

PUBLIC_MODULES = [
    "cynet", "cynet.activations", "cynet.backend", "cynet.callbacks", "cynet.config", "cynet.datasets",
    "cynet.datasets.fashion_mnist", "cynet.datasets.idx", "cynet.datasets.mnist", "cynet.datasets.tabular",
    "cynet.datasets.text", "cynet.distributed", "cynet.initializers", "cynet.kernels", "cynet.layers",
    "cynet.constraints", "cynet.saving_objects", "cynet.utils.tfevents", "cynet.utils.file_utils", "cynet.utils.data_utils", "cynet.losses", "cynet.metrics", "cynet.models", "cynet.ops", "cynet.optimizers",
    "cynet.optimizers.schedules", "cynet.random", "cynet.regularizers", "cynet.saving", "cynet.testing",
    "cynet.utils", "cynet.utils.tfevents", "cynet.utils.file_utils", "cynet.utils.data_utils",
]

# Parameters a docstring need not name: the bound instance/class, and catch-all forwarding ones
# (their docstring may still say what they forward).
_EXEMPT_PARAMS = {"self", "cls"}
_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments):\s*$", re.MULTILINE)


def _is_cynet(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "cynet"


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return names


def _public_objects():
    """(qualified name, object, kind) for each public class, function, method and property, once each."""
    seen, found = set(), []

    def add(qualname, obj, kind, owner=None):
        key = id(obj)
        if key not in seen:
            seen.add(key)
            found.append((qualname, obj, kind, owner))

    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in _public_names(module):
            obj = getattr(module, name)
            if inspect.isclass(obj) and _is_cynet(obj):
                add(f"{obj.__module__}.{obj.__qualname__}", obj, "class")
                for klass in obj.__mro__:
                    if not _is_cynet(klass):
                        continue
                    for attr, member in vars(klass).items():
                        if attr.startswith("_"):
                            continue
                        if isinstance(member, (staticmethod, classmethod)):
                            member = member.__func__
                        if isinstance(member, property):
                            add(f"{klass.__module__}.{klass.__qualname__}.{attr}", member, "property", klass)
                        elif inspect.isfunction(member):
                            add(f"{klass.__module__}.{klass.__qualname__}.{attr}", member, "method", klass)
            elif (inspect.isfunction(obj) or inspect.isbuiltin(obj) or callable(obj)) and _is_cynet(obj) \
                    and not inspect.isclass(obj):
                add(f"{obj.__module__}.{getattr(obj, '__qualname__', name)}", obj, "function")
    return found


def _doc(obj, kind, qualname, owner):
    if kind == "method":
        # A method overriding a documented base method inherits its docstring (as in Keras's docs).
        attr = qualname.rsplit(".", 1)[1]
        doc = obj.__doc__
        if not doc:
            for base in owner.__mro__[1:]:
                base_member = base.__dict__.get(attr)
                if base_member is not None and getattr(base_member, "__doc__", None):
                    return inspect.cleandoc(base_member.__doc__), True
        return (inspect.cleandoc(doc) if doc else ""), False
    doc = obj.__doc__ if kind != "class" or "__doc__" in vars(obj) else None
    return (inspect.cleandoc(doc) if doc else ""), False


def _named_params(obj, kind):
    target = obj.__init__ if kind == "class" else obj
    if kind == "class" and target is object.__init__:
        return []
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name not in _EXEMPT_PARAMS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _args_section(doc):
    match = _ARGS_HEADER.search(doc)
    if match is None:
        return None
    body = []
    for line in doc[match.end():].splitlines()[1:]:
        if line.strip() and not line.startswith((" ", "\t")):
            break  # the next section (Returns:, Example:, ...) or prose
        body.append(line)
    return "\n".join(body)


def _problems():
    problems = []
    for qualname, obj, kind, owner in _public_objects():
        doc, inherited = _doc(obj, kind, qualname, owner)
        if not doc:
            problems.append(f"{qualname}: no docstring")
            continue
        if kind == "property" or inherited:
            continue
        params = _named_params(obj, kind)
        if kind == "class" and params and not _ARGS_HEADER.search(doc):
            init_doc = inspect.getdoc(obj.__init__) if "__init__" in vars(obj) else ""
            if init_doc and _ARGS_HEADER.search(init_doc):
                doc = init_doc
        if not params:
            continue
        section = _args_section(doc)
        if section is None:
            problems.append(f"{qualname}: no Args: section for ({', '.join(params)})")
            continue
        missing = [p for p in params if not re.search(rf"^\s+\**{re.escape(p)}( \([^)]*\))?:", section, re.MULTILINE)]
        if missing:
            problems.append(f"{qualname}: Args: does not describe {', '.join(missing)}")
    return problems


def test_public_surface_is_walked():
    # The walk itself must find the surface (a broken walk would pass everything).
    names = {q for q, _, _, _ in _public_objects()}
    assert "cynet.layers.core.Dense" in names
    assert any(q.endswith("Layer.add_weight") for q in names)
    assert any(q.startswith("cynet.ops.") for q in names)
    assert len(names) > 300


def test_checker_flags_undocumented_arguments(monkeypatch):
    import cynet.utils as utils

    def undocumented(x, y=1):
        return x

    def partly(x, y=1):
        """Something.

        Args:
            x: the input.
        """
        return x

    undocumented.__module__ = partly.__module__ = "cynet.utils"
    monkeypatch.setattr(utils, "zz_undocumented", undocumented, raising=False)
    monkeypatch.setattr(utils, "zz_partly", partly, raising=False)
    problems = "\n".join(_problems())
    assert "undocumented: no docstring" in problems
    assert "partly: Args: does not describe y" in problems


def test_every_public_callable_is_documented():
    problems = _problems()
    assert not problems, f"{len(problems)} public callables lack docs:\n" + "\n".join(problems)


# Modules whose public signatures carry type hints (mypy checks them in CI, see pyproject.toml
# [tool.mypy]); a public function or method defined in one of them must annotate every parameter
# and its return type. Add a module here once its public signatures are annotated.
TYPED_MODULES = {
    "cynet.random", "cynet.ops.numpy_ops", "cynet.ops.nn", "cynet.losses", "cynet.initializers", "cynet.regularizers",
    "cynet.constraints",
    "cynet.callbacks", "cynet.testing", "cynet.utils", "cynet.utils.rng", "cynet.utils.sequence_utils",
    "cynet.utils.serialization", "cynet.metrics", "cynet.models", "cynet.models.model", "cynet.models.sequential",
    "cynet.models.functional", "cynet.models.templates", "cynet.activations", "cynet.variables",
    "cynet.datasets.mnist", "cynet.datasets.fashion_mnist", "cynet.datasets.tabular", "cynet.datasets.text",
    "cynet.distributed", "cynet.config", "cynet.dtype_policies", "cynet.ops.core", "cynet.ops.gradient_tape",
    "cynet.saving", "cynet.utils.py_dataset", "cynet.utils.progbar", "cynet.utils.plotting",
    "cynet.utils.timeseries_dataset_utils", "cynet.optimizers", "cynet.optimizers.base_optimizer",
    "cynet.optimizers.schedules", "cynet.layers.base", "cynet.trainers.trainer",
    "cynet.graph", "cynet.mixed_precision", "cynet.backend", "cynet.saving_keras", "cynet.saving_legacy_h5",
    "cynet.datasets.idx", "cynet.layers.core", "cynet.layers.rnn", "cynet.layers.wrappers", "cynet.layers.attention",
    "cynet.layers.rnn_cells",
    "cynet.layers.masking", "cynet.utils.dataset_utils",
} | {"cynet.optimizers." + name for name in ("sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "nadam",
                                            "adamax", "ftrl", "lion", "adafactor")} \
    | {"cynet.kernels." + name for name in ("conv", "pool", "norm", "rnn", "activations", "optim", "attention",
                                          "depthwise", "layernorm", "bf16", "_backend")}
# Modules whose public classes' constructors (the Keras-facing signatures) carry type hints.
TYPED_CONSTRUCTOR_MODULES = {
    "cynet.layers." + name for name in (
        "conv", "depthwise", "normalization", "pooling", "pooling1d", "reshaping", "regularization", "merging",
        "embedding", "prelu", "preprocessing", "image_preprocessing", "categorical", "lambda_layer", "einsum_dense")
}


def _untyped(objects):
    problems = []
    for qualname, obj, kind, _owner in objects:
        if kind == "property":
            obj = obj.fget
        if kind == "class":
            obj = obj.__init__ if "__init__" in vars(obj) else None
        if obj is None or not inspect.isfunction(obj):
            continue
        if obj.__module__ not in TYPED_MODULES and not (
                kind == "class" and obj.__module__ in TYPED_CONSTRUCTOR_MODULES):
            continue
        sig = inspect.signature(obj)
        missing = [p.name for p in sig.parameters.values()
                   if p.name not in _EXEMPT_PARAMS and p.annotation is inspect.Parameter.empty]
        if sig.return_annotation is inspect.Signature.empty:
            missing.append("return")
        if missing:
            problems.append(f"{qualname}: no type hint for {', '.join(missing)}")
    return problems


def test_typed_modules_have_annotated_public_signatures():
    problems = _untyped(_public_objects())
    assert not problems, "\n".join(problems)


def test_annotation_check_can_fail():
    def half(x: int, y=1):
        return x

    half.__module__ = "cynet.random"
    assert _untyped([("cynet.random.half", half, "function", None)]) == [
        "cynet.random.half: no type hint for y, return"]
