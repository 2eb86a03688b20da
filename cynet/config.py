"""cynet.config: Keras 3's keras.config functions that apply to cynet.

`set_floatx("float64")` makes float64 the dtype of layers created afterwards (float32 and float64
are cynet's float types; float16/bfloat16 variables are refused: mixed precision is a dtype policy,
`set_dtype_policy("mixed_bfloat16")`, see cynet.dtype_policies);
`set_image_data_format` changes the default `data_format` of the image layers; `backend()` is
"cynet", the one backend (its kernels, compiled or their NumPy twins: cynet.kernels.set_backend).
"""
from . import _config
from .dtype_policies import dtype_policy, set_dtype_policy  # noqa: F401 (keras.config's names)

__all__ = ["backend", "floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format",
           "set_image_data_format", "enable_unsafe_deserialization", "dtype_policy", "set_dtype_policy"]


def backend() -> str:
    """The name of the backend: "cynet"."""
    return "cynet"


def floatx() -> str:
    """The default float type of new layers and weights ("float32" unless set_floatx changed it)."""
    return _config.get("floatx")


def set_floatx(value: str) -> None:
    """Set the default float type: "float32" or "float64".

    Args:
        value: `"float32"` or `"float64"` (a mixed policy name raises ValueError pointing to
            `cynet.mixed_precision.set_global_policy`; half-precision types raise NotImplementedError).
    """
    if value in ("mixed_float16", "mixed_bfloat16"):
        raise ValueError(f"set_floatx({value!r}): a mixed policy is not a float type; use "
                         f"cynet.mixed_precision.set_global_policy({value!r})")
    if value in ("float16", "bfloat16"):
        raise NotImplementedError(f"set_floatx({value!r}): cynet keeps arrays and variables in float32 or float64; "
                                  "for bfloat16 products use cynet.mixed_precision.set_global_policy('mixed_bfloat16')")
    if value not in ("float32", "float64"):
        raise ValueError(f"value must be 'float32' or 'float64'; received {value!r}")
    _config.set_value("floatx", value)


def epsilon() -> float:
    """The fuzz factor of numeric expressions (1e-7 by default)."""
    return _config.get("epsilon")


def set_epsilon(value: float) -> None:
    """Set the fuzz factor `epsilon()` that losses and metrics use to avoid dividing by zero (Keras's default
    1e-7).

    Args:
        value: A positive number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"value must be a positive number; received {value!r}")
    _config.set_value("epsilon", float(value))


def image_data_format() -> str:
    """The default image layout of the image layers: "channels_last" (N, H, W, C) unless changed."""
    return _config.get("image_data_format")


def set_image_data_format(data_format: str) -> None:
    """Set the default `data_format` of the image layers and ops.

    Args:
        data_format: `"channels_last"` (the default) or `"channels_first"`.
    """
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; received {data_format!r}")
    _config.set_value("image_data_format", data_format)


def enable_unsafe_deserialization() -> None:
    """Accepted for Keras compatibility: cynet never deserializes code (lambdas) from files."""
