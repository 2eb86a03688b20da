"""Optimizers (Keras 3 `keras.optimizers`): SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Nadam,
Adamax, Ftrl, Lion, Adafactor.

    opt = cynet.optimizers.get("adam")            # by name, case-insensitive
    opt.apply_gradients(zip(grads, variables))    # in-place updates of cynet Variables
    state = opt.get_variable_values()             # iterations, then the slots in build order
    cfg = cynet.optimizers.serialize(opt)         # {"class_name": "Adam", "config": {...}}

Lookup by name uses a closed registry of cynet's own classes (plus classes the caller passes in
`custom_objects`); nothing is ever imported by name.
"""
from typing import Any


from . import schedules
from .adafactor import Adafactor
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .base_optimizer import Optimizer
from .ftrl import Ftrl
from .lion import Lion
from .nadam import Nadam
from .rmsprop import RMSprop
from .schedules import _lookup
from .sgd import SGD
from .._validation import ArgumentTypeError

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adam",
    "AdamW",
    "Nadam",
    "Adamax",
    "Ftrl",
    "Lion",
    "Adafactor",
    "schedules",
    "get",
    "serialize",
    "deserialize",
]

ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Nadam,
                                                        Adamax, Ftrl, Lion, Adafactor)}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """`{"class_name": ..., "config": optimizer.get_config()}` (JSON-compatible).

    Args:
        optimizer: An optimizer (instance, config dict or name).
    """
    if not isinstance(optimizer, Optimizer):
        raise ArgumentTypeError(f"serialize expects a cynet Optimizer; received {type(optimizer).__name__}")
    return {"class_name": optimizer.__class__.__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Optimizer:
    """An optimizer from `{"class_name": ..., "config": {...}}` (class names are case-insensitive;
    Keras's extra keys "module" and "registered_name" are ignored). Only cynet's optimizers are
    known, plus classes passed in `custom_objects` (a dict name -> class).

    Args:
        config: The dictionary `get_config()` returned.
        custom_objects: Optional dict of custom objects (e.g. a custom learning-rate schedule) used while
            deserializing.
    """
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ArgumentTypeError(
            "A serialized optimizer must be a dict with a string 'class_name' and a dict 'config'; "
            f"received {config!r}"
        )
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise ArgumentTypeError(f"'config' of a serialized optimizer must be a dict; received {inner!r}")
    registry = {cls.__name__: cls for cls in ALL_OBJECTS_DICT.values()}
    cls = _lookup(config["class_name"], registry, custom_objects, "optimizer")
    if custom_objects:
        return cls.from_config(dict(inner), custom_objects=custom_objects)
    return cls.from_config(dict(inner))


def get(identifier: Any) -> Optimizer | None:
    """An optimizer from a name ("adam", case-insensitive), a serialized dict, or an instance
    (returned as is). None gives None.

    Args:
        identifier: A name, a config dict, an Optimizer instance, or `None`.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"Could not interpret optimizer identifier: '{identifier}'. Known names: {sorted(ALL_OBJECTS_DICT)}"
            )
        return cls()
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r} (expected a name, a dict or an Optimizer instance)"
    )
