"""Ready-made models: `cynet.models.template(name, sizes, **overrides)` returns a compiled
Sequential model in one line, each of the template's choices overridable by keyword.

    model = cynet.models.template("basic", [784, 128, 128, 10])
    model.fit(x, cynet.utils.to_categorical(y, 10), epochs=5)

Templates:

basic
    A multilayer perceptron for classification. `sizes` = [inputs, hidden..., outputs]: an Input of
    `sizes[0]` features (or a sample shape such as (28, 28), flattened first), one Dense layer per
    hidden size with `activation`, a Dropout of rate `dropout` after each hidden layer when
    dropout > 0, and a Dense output layer of `sizes[-1]` units with `output_activation`; compiled
    with `optimizer`, `loss` and `metrics`. Defaults: activation="relu", output_activation="softmax",
    dropout=0.0, optimizer="adam", learning_rate=None (the optimizer's default), loss=
    "categorical_crossentropy" (one-hot targets; pass loss="sparse_categorical_crossentropy" for
    integer labels), metrics=["accuracy"], kernel_initializer="glorot_uniform",
    kernel_regularizer=None, name=None.
"""
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import layers, optimizers
from .. import _validation as _checks

_BASIC_DEFAULTS = {
    "activation": "relu",
    "output_activation": "softmax",
    "dropout": 0.0,
    "optimizer": "adam",
    "learning_rate": None,
    "loss": "categorical_crossentropy",
    "metrics": ["accuracy"],
    "kernel_initializer": "glorot_uniform",
    "kernel_regularizer": None,
    "name": None,
}


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _sizes(sizes):
    """[input (an int or a sample shape), hidden units..., output units], checked."""
    what = ("sizes must be a list [inputs, hidden units..., output units] of positive integers (at least the inputs "
            "and the outputs; the inputs may be a sample shape such as (28, 28))")
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"{what}; received sizes={sizes!r}")
    first, units = sizes[0], sizes[1:]
    if _is_int(first):
        shape = (_checks.positive_int("sizes[0]", first),)
    elif isinstance(first, (list, tuple)) and first and all(_is_int(s) for s in first):
        shape = tuple(_checks.positive_int("sizes[0]", s) for s in first)
    else:
        raise ValueError(f"{what}; received sizes={sizes!r}")
    return shape, [_checks.positive_int(f"sizes[{i + 1}]", u) for i, u in enumerate(units)]


def _optimizer(optimizer, learning_rate):
    if learning_rate is None:
        return optimizer
    if not isinstance(optimizer, str):
        raise ValueError(f"learning_rate goes with an optimizer name (optimizer='adam'); set it on the optimizer "
                         f"object instead; received optimizer={optimizer!r} and learning_rate={learning_rate!r}")
    optimizers.get(optimizer)   # an unknown name: the registry's own message
    return optimizers.deserialize({"class_name": optimizer, "config": {"learning_rate": learning_rate}})


def _basic(sizes, options):
    from .sequential import Sequential
    shape, units = _sizes(sizes)
    dropout = options["dropout"]
    dropout = 0.0 if dropout is None else _checks.real("dropout", dropout, low=0.0, high=1.0, high_open=True)
    stack = [layers.Input(shape=shape)]
    if len(shape) > 1:
        stack.append(layers.Flatten())
    dense = dict(kernel_initializer=options["kernel_initializer"], kernel_regularizer=options["kernel_regularizer"])
    for u in units[:-1]:
        stack.append(layers.Dense(u, activation=options["activation"], **dense))
        if dropout:
            stack.append(layers.Dropout(dropout))
    stack.append(layers.Dense(units[-1], activation=options["output_activation"], **dense))
    model = Sequential(stack, name=options["name"])
    model.compile(optimizer=_optimizer(options["optimizer"], options["learning_rate"]), loss=options["loss"],
                  metrics=options["metrics"])
    return model


_TEMPLATES = {"basic": (_basic, _BASIC_DEFAULTS)}


def template(template_name: str, sizes: Sequence[int], /, **overrides: Any) -> Any:
    """A compiled Sequential model from the template `template_name` (see the module docstring; "basic":
    Dense + ReLU hidden layers, softmax output, categorical cross-entropy, Adam).

    `sizes` lists the layer sizes, inputs first; each keyword overrides one of the template's
    choices (activation, output_activation, dropout, optimizer, learning_rate, loss, metrics,
    kernel_initializer, kernel_regularizer, name). An unknown template name is a ValueError, an
    unknown keyword a TypeError, each listing the known ones.

    Args:
        template_name: Name of the template (e.g. `"basic"`).
        sizes: Layer sizes, the input size first and the number of outputs last.
    """
    if not isinstance(template_name, str) or template_name not in _TEMPLATES:
        raise ValueError(f"Unknown model template {template_name!r}; the known templates are: "
                         f"{', '.join(sorted(_TEMPLATES))}")
    build, defaults = _TEMPLATES[template_name]
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise TypeError(f"template {template_name!r} has no option {', '.join(map(repr, unknown))}; its options are: "
                        f"{', '.join(defaults)}")
    return build(sizes, {**defaults, **overrides})
