"""Keras's `keras.backend` functions that apply to cynet, so that scripts written for Keras run:
`clear_session`, and the defaults `floatx()`, `epsilon()`, `image_data_format()`.

cynet has one backend (its kernels, compiled or their NumPy twins: `cynet.kernels.set_backend`),
so there is no backend to choose here.
"""
from .utils import clear_session  # noqa: F401

__all__ = ["clear_session", "epsilon", "floatx", "image_data_format"]


def floatx():
    """The default float type of layers and weights: "float32"."""
    return "float32"


def epsilon():
    """The fuzz factor Keras uses in numeric expressions: 1e-7."""
    return 1e-7


def image_data_format():
    """The default image layout: "channels_last" (N, H, W, C)."""
    return "channels_last"
