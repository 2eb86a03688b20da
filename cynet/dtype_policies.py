"""cynet.dtype_policies: Keras 3's dtype policies (keras.dtype_policies, keras.mixed_precision).

A policy names the dtype of a layer's variables and of its computations:

- "float32", "float64": both (cynet's two float types).
- "mixed_bfloat16": float32 variables, bfloat16 matrix products. The products of Dense,
  Conv1D, Conv2D, Conv1DTranspose, Conv2DTranspose (forward and both backward products),
  MultiHeadAttention (its projections, QK^T and AV) and Attention / AdditiveAttention (their
  query-key and probability-value products) round their inputs to bfloat16 (round to nearest,
  ties to even) while packing them and accumulate in float32 (cynet.kernels.matmul_bf16: AMX-BF16
  or AVX512_BF16 where the CPU has them, else the same rounding emulated;
  `cynet.kernels.info()["bf16"]` says which). Elementwise work, reductions, batch and layer
  normalization, softmax and the loss stay float32. Not yet in bfloat16: the recurrent layers
  (LSTM, GRU, SimpleRNN compute in float32 under the policy), the depthwise and separable
  convolutions and Embedding (which has no product).
  This differs from Keras in one way: Keras's compute dtype is that of the tensors between the
  layers (bfloat16 tensors; each layer's output is rounded to bfloat16), while NumPy has no
  bfloat16, so cynet's activations stay float32 arrays and only the products' inputs are rounded
  (layer.compute_dtype still says "bfloat16", as in Keras). cynet's results are therefore at least
  as accurate as Keras's under the same policy.
- "mixed_float16": accepted as Keras accepts it (float32 variables; compute_dtype "float16"),
  but on the CPU cynet computes such layers exactly as under "float32": there is no float16
  product on this path (x86 CPUs without AVX512_FP16 have no float16 arithmetic, and Keras's
  float16 ops on the CPU run slower than float32). Results equal float32's; no loss scaling is
  needed (LossScaleOptimizer is not provided).
- "bfloat16", "float16" (variables in half precision too): refused with NotImplementedError;
  cynet's variables are float32 or float64 arrays.

`get(identifier)` turns None (the global policy), a name, a serialized dict or a DTypePolicy
into a DTypePolicy; `serialize` / `deserialize` use Keras 3's form
{"module": "keras", "class_name": "DTypePolicy", "config": {"name": ...}, "registered_name": None}.
"""
from typing import Any

import numpy as np

from . import _config

__all__ = ["DTypePolicy", "FloatDTypePolicy", "get", "serialize", "deserialize", "dtype_policy",
           "set_dtype_policy"]

# name -> (compute dtype, variable dtype) as Keras reports them
_MIXED = {"mixed_bfloat16": ("bfloat16", "float32"), "mixed_float16": ("float16", "float32")}
_HALF = ("bfloat16", "float16", "half")


class DTypePolicy:
    """A layer's dtype policy (Keras 3's keras.DTypePolicy): `name` gives `compute_dtype` and
    `variable_dtype` (see the module docstring for what each does in cynet).

    Args:
        name: "float32", "float64", "mixed_bfloat16" or "mixed_float16" (None: the global policy).
    """

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            name = dtype_policy().name
        self._name = name
        self._compute_dtype, self._variable_dtype = _parse(name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_dtype(self) -> str:
        """The dtype Keras computes in under this policy ("bfloat16" for mixed_bfloat16). cynet's
        arrays stay `variable_dtype`; only the matrix products' inputs are rounded to bfloat16."""
        return self._compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layer's variables (and of cynet's arrays between layers)."""
        return self._variable_dtype

    @property
    def quantization_mode(self) -> None:
        return None

    @property
    def _bf16_products(self):
        """Whether the layer's matrix products take bfloat16-rounded inputs."""
        return self._compute_dtype == "bfloat16"

    def get_config(self) -> dict[str, Any]:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DTypePolicy":
        return cls(**config)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and self._name == other._name

    def __hash__(self):
        return hash(("DTypePolicy", self._name))


FloatDTypePolicy = DTypePolicy   # Keras 3's alias


def _parse(name):
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a string, such as 'mixed_bfloat16'; received name={name!r} "
                        f"(of type {type(name).__name__})")
    if name in _MIXED:
        return _MIXED[name]
    if name in _HALF:
        raise NotImplementedError(
            f"dtype policy {name!r}: cynet keeps variables in float32 or float64; use 'mixed_bfloat16' "
            "(float32 variables, bfloat16 matrix products) instead")
    try:
        dtype = np.dtype(name)
    except TypeError:
        dtype = None
    if dtype is None or dtype not in (np.float32, np.float64) or name not in ("float32", "float64"):
        raise ValueError(f"Cannot convert {name!r} to a dtype policy. Valid policies: 'float32', 'float64', "
                         "'mixed_bfloat16', 'mixed_float16'")
    return name, name


def get(identifier: Any) -> DTypePolicy:
    """A DTypePolicy from None (the global policy), a name, a NumPy float dtype, a serialized dict
    or a DTypePolicy."""
    if identifier is None:
        return dtype_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, (np.dtype, type)):
        try:
            identifier = np.dtype(identifier).name
        except TypeError:
            pass
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    raise ValueError(f"Cannot interpret {identifier!r} as a dtype policy: pass a name such as 'mixed_bfloat16', "
                     "a DTypePolicy or its serialized dict")


def serialize(policy: DTypePolicy) -> dict[str, Any]:
    """Keras 3's serialized form of a policy."""
    policy = get(policy)
    return {"module": "keras", "class_name": "DTypePolicy", "config": policy.get_config(), "registered_name": None}


def deserialize(config: dict[str, Any]) -> DTypePolicy:
    """The DTypePolicy of a serialized dict (Keras 3's; "FloatDTypePolicy" too)."""
    if not isinstance(config, dict) or config.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy") \
            or not isinstance(config.get("config"), dict):
        raise ValueError(f"Cannot deserialize {config!r} as a dtype policy: expected "
                         "{'class_name': 'DTypePolicy', 'config': {'name': ...}}")
    return DTypePolicy.from_config(config["config"])


def dtype_policy() -> DTypePolicy:
    """The global dtype policy (keras.config.dtype_policy): the one set_dtype_policy set, else
    DTypePolicy(cynet.config.floatx())."""
    policy = _config.get("dtype_policy")
    return policy if policy is not None else DTypePolicy(_config.get("floatx"))


def set_dtype_policy(policy: str | DTypePolicy) -> None:
    """Set the global dtype policy. Layers created afterwards without a dtype take it.

    Args:
        policy: A policy name ("float32", "float64", "mixed_bfloat16", "mixed_float16") or a
            DTypePolicy.
    """
    if isinstance(policy, str):
        policy = DTypePolicy(policy)
    elif not isinstance(policy, DTypePolicy):
        raise ValueError(f"Invalid policy argument: expected the name of a policy (such as 'mixed_bfloat16') or a "
                         f"DTypePolicy; received policy={policy!r}")
    _config.set_value("dtype_policy", policy)
