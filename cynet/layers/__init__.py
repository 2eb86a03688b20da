"""Keras-style layers. Each has forward (`layer(x, training=...)`) and `backward(grad)`."""
import contextlib
import contextvars

from ..utils.serialization import custom_object_scope, get_registered_object
from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: F401
from .base import Layer  # noqa: F401
from .categorical import (  # noqa: F401
    CategoryEncoding,
    Hashing,
    IntegerLookup,
    StringLookup,
    TextVectorization,
)
from .conv import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose  # noqa: F401
from .depthwise import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D  # noqa: F401
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
from .einsum_dense import EinsumDense  # noqa: F401
from .embedding import Embedding  # noqa: F401
from .lambda_layer import Lambda  # noqa: F401
from .masking import Masking  # noqa: F401
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
from .normalization import (  # noqa: F401
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    RMSNormalization,
    UnitNormalization,
)
from .pooling import (  # noqa: F401
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    UpSampling2D,
)
from .pooling1d import AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D  # noqa: F401
from .image_preprocessing import (  # noqa: F401
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Resizing,
)
from .prelu import PReLU  # noqa: F401
from .preprocessing import CenterCrop, Normalization, Rescaling  # noqa: F401
from .regularization import (  # noqa: F401
    ActivityRegularization,
    AlphaDropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
)
from .reshaping import (  # noqa: F401
    Cropping1D,
    Cropping2D,
    Identity,
    Permute,
    RepeatVector,
    UpSampling1D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from .rnn import GRU, LSTM, SimpleRNN  # noqa: F401
from .rnn_cells import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells  # noqa: F401
from .wrappers import Bidirectional, TimeDistributed  # noqa: F401

Conv2d = Conv2D
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D

from . import tensor_ops as _tensor_ops  # noqa: E402  (the layers operators on symbolic tensors make)

_REGISTRY: dict[str, type] = {
    cls.__name__: cls
    for cls in (InputLayer, Dense, Activation, ReLU, LeakyReLU, ELU, Softmax, Dropout, Flatten, Reshape, Conv2D,
                MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, UpSampling2D,
                BatchNormalization, Embedding, SimpleRNN, LSTM, GRU,
                Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot,
                Identity, RepeatVector, Permute, ZeroPadding1D, ZeroPadding2D, Cropping1D, Cropping2D, UpSampling1D,
                SpatialDropout1D, SpatialDropout2D, GaussianNoise, GaussianDropout, AlphaDropout, PReLU,
                GlobalAveragePooling1D, GlobalMaxPooling1D, Rescaling, CenterCrop, Normalization,
                Resizing, RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
                RandomBrightness, ActivityRegularization, Lambda,
                CategoryEncoding, Hashing, IntegerLookup, StringLookup, TextVectorization,
                _tensor_ops.ScalarOp, _tensor_ops.GetItem, _tensor_ops.ReshapeBatch, Bidirectional, TimeDistributed,
                Conv1D, Conv1DTranspose, Conv2DTranspose, MaxPooling1D, AveragePooling1D,
                Masking, LayerNormalization, GroupNormalization, UnitNormalization,
                MultiHeadAttention, Attention, AdditiveAttention)
}
_REGISTRY.update((cls.__name__, cls) for cls in (DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D))
_REGISTRY.update((cls.__name__, cls) for cls in (EinsumDense, RMSNormalization, RandomCrop))
_REGISTRY.update((cls.__name__, cls) for cls in (RNN, SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells))
_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def serialize(layer):
    """A layer's config dictionary: `{"class_name": ..., "config": ...}` (with its registered name when it has
    one), as Keras's `layers.serialize`.

    Args:
        layer: The wrapped layer.
    """
    config = {"class_name": type(layer).__name__, "config": layer.get_config()}
    registered = type(layer).__dict__.get("_registered_name")
    if registered:
        config["registered_name"] = registered
    return config


_deserialize_hook = contextvars.ContextVar("cynet_deserialize_hook", default=None)


@contextlib.contextmanager
def deserialize_hook(hook):
    """Within the block, `hook(layer)` runs on each layer `deserialize` makes, before it is built
    (the model loader plans weights this way, without allocating them).

    Args:
        hook: Callable taking the new layer.
    """
    token = _deserialize_hook.set(hook)
    try:
        yield
    finally:
        _deserialize_hook.reset(token)


def deserialize(config, custom_objects=None):
    """A layer (or model) from {"class_name", "config"}: classes come only from cynet's own
    registry and the custom objects (registered with register_keras_serializable, given as
    `custom_objects`, or in a custom_object_scope).

    Args:
        config: The dictionary `get_config()` returned.
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
    """
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), dict):
        raise ValueError(f"a layer config must be a dict with 'class_name' and 'config'; received {config!r}")
    name = config.get("class_name")
    cls = _REGISTRY.get(name)
    if cls is None and name in _MODEL_CLASSES:   # a model nested in a model
        from .. import models
        cls = models.Functional if name == "Model" else getattr(models, name)
    if cls is None and isinstance(name, str):
        registered = config.get("registered_name")
        cls = get_registered_object(registered if isinstance(registered, str) else name, custom_objects)
        if cls is not None and not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise ValueError(f"the custom object {name!r} is not a Layer class; received {cls!r}")
    if cls is None:
        raise ValueError(f"Unknown layer class {name!r}; expected one of {sorted(_REGISTRY)}, or a custom class "
                         "registered with @cynet.saving.register_keras_serializable() or passed in custom_objects")
    with custom_object_scope(custom_objects):
        layer = cls.from_config(dict(config.get("config", {})))
    hook = _deserialize_hook.get()
    if hook is not None:
        hook(layer)
    return layer
