"""`serialize_keras_object` / `deserialize_keras_object` (Keras 3's `keras.saving` functions, also
in `keras.utils`): any cynet object with a config (layers and models, losses, metrics, optimizers
and schedules, initializers, regularizers, constraints, activations, dtype policies, registered
custom classes) as Keras's dict `{"module", "class_name", "config", "registered_name"}`, and back;
plain values, lists and dicts recursively; NumPy arrays as Keras's `__numpy__` entries. Classes
resolve only through cynet's registries and the caller's custom objects, never through imports.
"""
import inspect
from typing import Any

import numpy as np

from .utils.serialization import custom_object_scope, get_registered_name, get_registered_object

__all__ = ["serialize_keras_object", "deserialize_keras_object"]


def _families():
    """(module name in Keras's dicts, base class, cynet module with serialize/deserialize)."""
    from . import constraints, initializers, layers, losses, metrics, optimizers, regularizers
    from .dtype_policies import DTypePolicy
    from .optimizers.schedules import LearningRateSchedule
    from . import dtype_policies
    from .optimizers import schedules
    return [("keras.layers", layers.Layer, layers), ("keras.losses", losses.Loss, losses),
            ("keras.metrics", metrics.Metric, metrics), ("keras.optimizers", optimizers.Optimizer, optimizers),
            ("keras.optimizers.schedules", LearningRateSchedule, schedules),
            ("keras.initializers", initializers.Initializer, initializers),
            ("keras.regularizers", regularizers.Regularizer, regularizers),
            ("keras.constraints", constraints.Constraint, constraints),
            ("keras", DTypePolicy, dtype_policies)]


def serialize_keras_object(obj: Any) -> Any:
    """`obj` as JSON-able data in Keras 3's format.

    Args:
        obj: A cynet object with a config, an activation function, a NumPy array, or plain data
            (None, bool, int, float, str, and lists, tuples and dicts of these).
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": obj.tolist(), "dtype": obj.dtype.name}}
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): serialize_keras_object(v) for k, v in obj.items()}
    registered = get_registered_name(obj)
    from .layers import Layer
    if isinstance(obj, Layer) and ">" not in registered:   # Keras's own layer entry (models in their model form)
        from .layers import serialize as serialize_layer
        from .saving_keras import _layer_to_keras
        return _layer_to_keras(serialize_layer(obj), obj)
    for module, base, family in _families():
        if isinstance(obj, base):
            entry = family.serialize(obj)
            return {"module": module, "class_name": entry["class_name"], "config": entry["config"],
                    "registered_name": registered if ">" in registered else None}
    from . import activations
    if callable(obj) and not inspect.isclass(obj):
        try:
            name = activations.serialize(obj)
        except (ValueError, TypeError):
            name = None
        if isinstance(name, str):
            return name
    if hasattr(obj, "get_config"):
        return {"module": type(obj).__module__, "class_name": type(obj).__name__, "config": obj.get_config(),
                "registered_name": registered if ">" in registered else None}
    raise TypeError(f"Cannot serialize {obj!r}: it has no get_config() and is not an activation, an array or "
                    "plain data")


def deserialize_keras_object(config: Any, custom_objects: dict[str, Any] | None = None, safe_mode: bool = True,
                             **kwargs: Any) -> Any:
    """The object `serialize_keras_object` (cynet's or Keras's) described.

    Args:
        config: The serialized data.
        custom_objects: Optional dict mapping names to custom classes or functions.
        safe_mode: Accepted as in Keras; cynet never runs code from a config (no lambdas), so it
            is always safe.
        **kwargs: Keras's internal options (ignored).
    """
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        return config
    if isinstance(config, (list, tuple)):
        return [deserialize_keras_object(v, custom_objects) for v in config]
    if not isinstance(config, dict):
        raise TypeError(f"Cannot deserialize {config!r}: expected plain data or a dict with 'class_name'")
    if "class_name" not in config:
        return {k: deserialize_keras_object(v, custom_objects) for k, v in config.items()}
    name, inner = config["class_name"], config.get("config", {})
    if name == "__numpy__":
        return np.asarray(inner["value"], dtype=inner.get("dtype"))
    entry = {"class_name": name, "config": inner}
    if config.get("registered_name"):
        entry["registered_name"] = config["registered_name"]
    module = config.get("module")
    is_layer = module in ("keras.layers", "keras.models") or name in ("Sequential", "Functional", "Model")
    if is_layer or (module is None and config.get("build_config") is not None):
        from .saving_keras import _layer_from_keras   # Keras's entries: its extra, inert arguments dropped
        entry = _layer_from_keras(dict(config), "serialized object")
    kind = {"keras.initializers": "initializer", "keras.regularizers": "regularizer",
            "keras.constraints": "constraint"}.get(str(module))
    if kind is not None:
        from .saving_keras import _nested_from_keras   # Keras's extra, inert arguments dropped
        entry = _nested_from_keras(kind, entry, "serialized object", str(name))
    families = _families()
    chosen = ([families[0][2]] if is_layer else [f for m, _, f in families if m == module]) or [f for *_, f in families]
    errors = []
    with custom_object_scope(custom_objects):
        for family in chosen:
            try:
                return family.deserialize(entry)
            except (ValueError, TypeError, KeyError) as exc:
                errors.append(f"{family.__name__}: {exc}")
        cls = get_registered_object(str(config.get("registered_name") or name), custom_objects)
        if cls is not None and inspect.isclass(cls) and hasattr(cls, "from_config"):
            return cls.from_config(dict(inner))
    raise ValueError(f"Cannot deserialize class {name!r} (module {module!r}): " + "; ".join(errors[:3]))
