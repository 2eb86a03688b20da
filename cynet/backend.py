"""Keras's `keras.backend` functions that apply to cynet, so that scripts written for Keras run:
`clear_session`, and the defaults `floatx()`, `epsilon()`, `image_data_format()` (cynet.config's).

cynet has one backend (its kernels, compiled or their NumPy twins: `cynet.kernels.set_backend`),
so there is no backend to choose here.
"""
from .config import (backend, epsilon, floatx, image_data_format, set_epsilon, set_floatx,  # noqa: F401
                     set_image_data_format)
from .utils import clear_session  # noqa: F401

__all__ = ["backend", "clear_session", "epsilon", "floatx", "image_data_format", "set_epsilon", "set_floatx",
           "set_image_data_format"]
