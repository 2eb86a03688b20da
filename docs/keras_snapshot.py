"""Write docs/keras_api.json: the public names of Keras 3's namespaces, the list the Keras
compatibility page (docs/gen_compat.py) checks cynet against.

Generated once, and again only when the Keras version the project targets changes:

    KERAS_BACKEND=torch python docs/keras_snapshot.py      # needs keras (3.15 for the committed file)

For every class and function the file also keeps the names of its options: the explicit parameters
with a default value (from `inspect.signature`; required arguments are passed by position and
`*args` / `**kwargs` name nothing): the page lists the Keras options cynet does not accept.

A name is every attribute of the namespace that does not start with "_" and is not a submodule
(keras.ops.nn, keras.utils.legacy, ...); keras.optimizers.schedules is listed as its own namespace.
The file is committed so that the docs build needs neither Keras nor a backend.
"""
import json
import os
import types

NAMESPACES = ("layers", "ops", "losses", "metrics", "optimizers", "optimizers.schedules", "callbacks", "utils",
              "activations", "initializers", "regularizers", "models", "saving")
HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "keras_api.json")


def parameters(obj):
    """The names of the parameters with a default of a class's constructor or a function (None:
    not callable or no signature)."""
    import inspect
    if not callable(obj):
        return None
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [p.name for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is not p.empty]


def snapshot():
    import importlib
    keras = importlib.import_module("keras")
    namespaces, signatures = {}, {}
    for name in NAMESPACES:
        module = importlib.import_module(f"keras.{name}")
        namespaces[name] = sorted(n for n in dir(module)
                                  if not n.startswith("_") and not isinstance(getattr(module, n), types.ModuleType))
        for n in namespaces[name]:
            params = parameters(getattr(module, n))
            if params is not None:
                signatures[f"{name}.{n}"] = params
    return {"keras_version": keras.__version__,
            "how": "KERAS_BACKEND=torch python docs/keras_snapshot.py",
            "namespaces": namespaces, "parameters": signatures}


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "torch")
    data = snapshot()
    with open(PATH, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=0, sort_keys=False)
        f.write("\n")
    print(f"wrote {PATH}: Keras {data['keras_version']}, "
          + ", ".join(f"{k} {len(v)}" for k, v in data["namespaces"].items()))
