"""Embedding."""
from typing import Any

import numpy as np

from .. import _validation, constraints, initializers, regularizers
from .base import Layer, add_grad, check_constraint, check_initializer, check_regularizer


class Embedding(Layer):
    """Maps integer indices in [0, input_dim) to rows of `embeddings` (input_dim, output_dim).

    With `mask_zero=True` index 0 is padding: the output's mask (compute_mask, propagated by the
    models to mask-aware layers) is `inputs != 0`, as in Keras 3.

    Args:
        input_dim: Size of the input's last axis (Keras's legacy way of giving the input shape).
        output_dim: Size of the dense embedding vectors.
        embeddings_initializer: Initializer of the embedding matrix.
        embeddings_regularizer: Regularizer of the embedding matrix, or `None`.
        embeddings_constraint: Constraint the optimizer applies to the embedding matrix after each
            update, or `None`.
        mask_zero: Whether index 0 is a padding value that produces a mask for the downstream layers (then
            index 0 cannot be used in the vocabulary).
    """

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, embeddings_constraint: Any = None, mask_zero: bool = False,
                 **kwargs: Any) -> None:
        kwargs.pop("input_length", None)
        super().__init__(**kwargs)
        self.input_dim = _validation.positive_int("input_dim", input_dim)
        self.output_dim = _validation.positive_int("output_dim", output_dim)
        self.mask_zero = _validation.flag("mask_zero", mask_zero)
        self.embeddings_initializer = check_initializer("embeddings_initializer", embeddings_initializer, "uniform")
        self.embeddings_regularizer = check_regularizer("embeddings_regularizer", embeddings_regularizer)
        self.embeddings_constraint = check_constraint("embeddings_constraint", embeddings_constraint)

    def build(self, input_shape):
        self.embeddings = self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer, name="embeddings",
                                          constraint=self.embeddings_constraint)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _convert_input(self, inputs):
        idx = _validation.as_array(f"{self._who()}: inputs", inputs)
        if idx.ndim == 0:
            raise ValueError(f"Embedding '{self.name}': inputs need a batch axis; received a scalar")
        _validation.check_size(f"{self._who()}: inputs", idx.shape + (self.output_dim,), self.dtype.itemsize,
                               "the embedded inputs")
        if idx.dtype.kind == "f":
            if not np.all(np.isfinite(idx)) or np.any(idx != np.floor(idx)):
                raise ValueError(f"Embedding '{self.name}': inputs must be integer indices; received non-integral "
                                 f"values")
        elif idx.dtype.kind not in "iub":
            raise TypeError(f"Embedding '{self.name}': inputs must be integer indices; received dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            raise ValueError(f"Embedding '{self.name}': indices must lie in [0, {self.input_dim}) (input_dim); "
                             f"received inputs with values from {idx.min()} to {idx.max()}")
        idx = idx.astype(np.intp, copy=False)
        return idx

    def compute_mask(self, inputs, mask=None):
        """`inputs != 0` with mask_zero=True, else None (an input mask stops here, as in Keras).

        Args:
            inputs: Input array (or list of arrays for multi-input layers).
            mask: Optional boolean mask of the inputs (`True` keeps a position).
        """
        if not self.mask_zero:
            return None
        return _validation.as_array(f"{self._who()}: inputs", inputs) != 0

    def _forward(self, ctx, inputs, training):
        ctx.indices = inputs
        return self.embeddings.value[inputs]

    def _backward(self, ctx, grad, need_input_grad):
        g = np.zeros_like(self.embeddings.value)
        np.add.at(g, ctx.indices.reshape(-1), grad.reshape(-1, self.output_dim))
        add_grad(self.embeddings, g)
        return None

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(initializers.get(self.embeddings_initializer)),
                "embeddings_regularizer": None if self.embeddings_regularizer is None
                else regularizers.serialize(regularizers.get(self.embeddings_regularizer)),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero}
