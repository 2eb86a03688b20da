"""Keras-style layers. Each has forward (`layer(x, training=...)`) and `backward(grad)`."""
from .base import Layer  # noqa: F401
from .conv import Conv2D  # noqa: F401
from .core import (  # noqa: F401
    ELU,
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    LeakyReLU,
    ReLU,
    Reshape,
    Softmax,
)
from .embedding import Embedding  # noqa: F401
from .merging import (  # noqa: F401
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from .normalization import BatchNormalization  # noqa: F401
from .pooling import (  # noqa: F401
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    UpSampling2D,
)
from .rnn import GRU, LSTM, SimpleRNN  # noqa: F401

Conv2d = Conv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D

from . import tensor_ops as _tensor_ops  # noqa: E402  (the layers operators on symbolic tensors make)

_REGISTRY = {
    cls.__name__: cls
    for cls in (InputLayer, Dense, Activation, ReLU, LeakyReLU, ELU, Softmax, Dropout, Flatten, Reshape, Conv2D,
                MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, UpSampling2D,
                BatchNormalization, Embedding, SimpleRNN, LSTM, GRU,
                Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot,
                _tensor_ops.ScalarOp, _tensor_ops.GetItem)
}
_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config):
    """A layer from {"class_name", "config"}; classes come only from cynet's own registry."""
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), dict):
        raise ValueError(f"a layer config must be a dict with 'class_name' and 'config'; received {config!r}")
    cls = _REGISTRY.get(config.get("class_name"))
    if cls is None and config.get("class_name") in _MODEL_CLASSES:   # a model nested in a model
        from .. import models
        cls = models.Functional if config["class_name"] == "Model" else getattr(models, config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown layer class {config.get('class_name')!r}; expected one of {sorted(_REGISTRY)}")
    return cls.from_config(dict(config.get("config", {})))
