"""Attention layers (Keras 3: keras/src/layers/attention/multi_head_attention.py).

MultiHeadAttention is a composite layer: its call is four projection layers (Keras's EinsumDense
sublayers "query", "key", "value" and "attention_output", with their kernel and bias shapes and
weight order) and one fused dot-product attention op, each recorded on the tape with its own
backward, so a shared MHA (self-attention `mha(x, x)`, one layer used twice, predict from many
threads) keeps every per-call value in the call's context and gets the sum of its gradients.

The attention op is one fused kernel (cynet.kernels.attention_forward / _backward: per (batch,
head) pair, the products and the masked softmax with the pair's scores in cache, on the
projections' (batch, T, heads, dim) layout); with dropout in training, or a gradient flowing
into the returned scores, it is NumPy's matmul around the masked-softmax kernel
(cynet.kernels.masked_softmax_forward / _backward):

    scores = (q / sqrt(key_dim)) k^T          (batch, heads, T, S)
    p      = softmax(where(mask, scores, -1e9))   over the keys (a fully masked row is uniform)
    out    = dropout(p) v

Self-attention (`mha(x, x)`: query, value and key one array) runs the query, key and value
projections as ONE product (x times their kernels side by side), and a key that is the value
(`mha(query, value)`, or key=value) the key and value projections as one (_PackedProjection):
forward, one product and one bias add; backward, one product for the three kernels' gradients
and one for x's, where separate projections take three of each and two sums. The fused attention
reads the projections as views of that product and writes their gradients as the parts of one
array (cynet.kernels.attention_backward's `packed`), so neither side copies. The weights stay the
three projections' (Keras's names, shapes and get_weights() order); results equal the separate
path's (tests/layers/test_attention_packed.py).

The mask is Keras's: the AND of `attention_mask` (batch, T, S), `query_mask` (batch, T) as
(batch, T, 1), `value_mask` and `key_mask` (batch, S) as (batch, 1, S), the causal mask (a query
attends to keys at or before its position) with `use_causal_mask=True`, and the band
|i - j| < sliding_window. True (or nonzero) keeps a position.

One difference from Keras: Keras 3 replaces the `query_mask` argument by the mask carried by the
query tensor itself (from Embedding(mask_zero=True) or Masking), so an explicit `query_mask=` is
ignored there; cynet arrays carry no mask, and `query_mask=` is honoured.
"""
import math
import types
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation, constraints, initializers, regularizers
from .. import graph as _graph
from .. import tape as _tape
from .. import kernels as K
from ..utils.rng import make_rng
from ._precision import matmul as _mm
from .base import Layer, add_grad, check_constraint, check_initializer, check_regularizer

_MASK_ARGS = ("query_mask", "value_mask", "key_mask", "attention_mask")
_INPUT_ARGS = ("query", "value", "key") + _MASK_ARGS


class NotSupportedInput(NotImplementedError, ValueError):
    """Inputs Keras takes that cynet does not yet (a NotImplementedError), refused like any input
    a layer cannot take (also a ValueError)."""


class _Projection(Layer):
    """Keras's EinsumDense as MultiHeadAttention uses it: the last `n_in` axes of the input
    contracted with a kernel of shape (input's last n_in sizes) + out_dims, plus a bias of shape
    out_dims. (batch, T, dim) -> (batch, T, heads, key_dim) for the input projections (n_in=1),
    (batch, T, heads, value_dim) -> (batch, T, *output_shape) for the output one (n_in=2)."""

    def __init__(self, n_in, out_dims, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                 bias_regularizer, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.n_in, self.out_dims, self.use_bias = int(n_in), tuple(out_dims), bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint

    def build(self, input_shape):
        in_dims = tuple(input_shape[-self.n_in:])
        if len(input_shape) < self.n_in + 1 or any(d is None for d in in_dims):
            raise ValueError(f"{self._who()}: inputs need known sizes on their last {self.n_in} axes; received shape "
                             f"{tuple(input_shape)}")
        self.kernel = self.add_weight(in_dims + self.out_dims, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel",
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight(self.out_dims, self.bias_initializer, regularizer=self.bias_regularizer,
                                    name="bias", constraint=self.bias_constraint) if self.use_bias else None
        self._input_axes = {-i: int(d) for i, d in zip(range(self.n_in, 0, -1), in_dims)}
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-self.n_in]) + self.out_dims

    def _forward(self, ctx, inputs, training):
        fan_in = int(np.prod(self.kernel.shape[:self.n_in]))
        x2 = inputs.reshape(-1, fan_in)
        y = _mm(self, x2, self.kernel.value.reshape(fan_in, -1))
        if self.use_bias:
            y += self.bias.value.reshape(-1)
        ctx.x2, ctx.shape = x2, inputs.shape
        return y.reshape(inputs.shape[:-self.n_in] + self.out_dims)

    def _backward(self, ctx, grad, need_input_grad):
        w2 = self.kernel.value.reshape(ctx.x2.shape[1], -1)
        g2 = grad.reshape(-1, w2.shape[1])
        add_grad(self.kernel, _mm(self, ctx.x2.T, g2).reshape(self.kernel.shape))
        if self.use_bias:
            add_grad(self.bias, g2.sum(axis=0).reshape(self.bias.shape))
        return _mm(self, g2, w2.T).reshape(ctx.shape) if need_input_grad else None


class _PackedProjection(Layer):
    """Several input projections of ONE input (self-attention's query, key and value, or the key
    and value of `mha(query, value)`) as one product: x (M, E) times the parts' kernels side by
    side (E, N), one bias add, and in the backward one product for the kernels' gradients and one
    for the input's, instead of one per part and the sum of the input's gradients.

    The weights stay the parts' (Keras's names, shapes and order); this node owns none. Its
    outputs are views of the (batch, T, N) product, which the fused attention reads in place; the
    attention's backward writes their gradients into one (batch, T, N) array likewise (its
    `packed` layouts), taken here without a copy (any other layout is joined first)."""

    def __init__(self, parts, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "_parts", tuple(parts))   # not tracked: their weights stay theirs alone
        self.built = True

    @property
    def _trainable_vars(self):
        """The parts' trainable variables (what the tape resets and checks for this record)."""
        return [v for part in self._parts for v in part._trainable_vars]

    @_trainable_vars.setter
    def _trainable_vars(self, value):   # (Layer.__init__'s empty list: the parts own the weights)
        pass

    @property
    def trainable_weights(self):   # none of its own (the parts' records on the tape name theirs)
        return []

    @property
    def _bf16(self):   # the parts' policy (bfloat16 products under mixed_bfloat16), whatever it became
        return self._parts[0]._bf16

    def _add_regularization_gradients(self):
        """None here: MultiHeadAttention records each part on the tape, which adds their penalties once."""

    def _forward(self, ctx, inputs, training):
        parts = self._parts
        fan_in = inputs.shape[-1]
        kernel = np.concatenate([part.kernel.value.reshape(fan_in, -1) for part in parts], axis=1)   # (E, N)
        x2 = inputs.reshape(-1, fan_in)
        y = _mm(self, x2, kernel)
        if parts[0].use_bias:
            y += np.concatenate([part.bias.value.reshape(-1) for part in parts])
        ctx.x2, ctx.kernel, ctx.shape = x2, kernel, inputs.shape
        y = y.reshape(inputs.shape[:-1] + (kernel.shape[1],))
        outs, start = [], 0
        for part in parts:
            width = part.kernel.size // fan_in
            outs.append(y[..., start:start + width].reshape(inputs.shape[:-1] + part.out_dims))
            start += width
        return outs

    def _backward(self, ctx, grad, need_input_grad):
        parts = self._parts
        g2 = _joined(grad, ctx.x2.shape[0], ctx.kernel.shape[1])   # (M, N)
        g_kernel = _mm(self, ctx.x2.T, g2)                          # (E, N): every kernel's gradient
        g_bias = g2.sum(axis=0) if parts[0].use_bias else None
        start = 0
        for part in parts:
            width = part.kernel.size // ctx.x2.shape[1]
            add_grad(part.kernel, np.ascontiguousarray(g_kernel[:, start:start + width]).reshape(part.kernel.shape))
            if g_bias is not None:
                add_grad(part.bias, g_bias[start:start + width].reshape(part.bias.shape))
            start += width
        return _mm(self, g2, ctx.kernel.T).reshape(ctx.shape) if need_input_grad else None

    def record_parts(self):
        """Record each part on the active tape (a record without inputs or outputs, whose backward
        never runs): the tape then resets their gradients and adds their regularization penalties
        once per backward pass, as for a part called on its own (also on the same tape)."""
        tape = _tape.active()
        if isinstance(tape, _tape.Tape):
            for part in self._parts:
                tape.record(part, _tape.Context(), (), (), True, True)


def _joined(grads, rows, width):
    """The (rows, width) gradient of a packed projection from its parts' gradients: their common
    C-contiguous base, when they are its consecutive column blocks (the attention's packed
    layouts), else the parts joined along the columns (a copy)."""
    base = grads[0].base
    if isinstance(base, np.ndarray) and base.flags.c_contiguous and base.size == rows * width \
            and base.dtype == grads[0].dtype:
        item, start, at = base.itemsize, base.__array_interface__["data"][0], 0
        for g in grads:
            cols = g.size // rows if rows else 0
            inner = tuple(int(np.prod(g.shape[i + 1:])) * item for i in range(2, g.ndim))
            if g.base is not base or g.ndim < 2 or g.__array_interface__["data"][0] != start + at * item \
                    or g.strides != (g.shape[1] * width * item, width * item) + inner:
                break
            at += cols
        else:
            if at == width:
                return base.reshape(rows, width)
    return np.concatenate([g.reshape(rows, -1) for g in grads], axis=1)


class _DotProductAttention(Layer):
    """The fused attention of the projected [query (B, T, H, k), key (B, S, H, k), value (B, S, H, v)]:
    (B, T, H, v), or [that, the attention probabilities (B, H, T, S)] with return_scores. `mask` is
    a boolean array broadcastable to (B, T, S) or None; dropout (in training) drops probabilities."""

    _multi_input = True

    def __init__(self, scale, dropout, rng, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.dropout, self._rng = float(scale), float(dropout), rng

    def compute_output_shape(self, input_shape):
        q, _, v = input_shape
        return tuple(q[:-1]) + (v[-1],)

    def _forward(self, ctx, inputs, training, mask=None, return_scores=False, packed=None):
        q, k, v = inputs
        mask4 = None if mask is None else mask[:, None]
        ctx.q, ctx.k, ctx.v, ctx.mask4, ctx.return_scores = q, k, v, mask4, return_scores
        ctx.packed = packed   # the gradients' layout for a packed projection (K.attention_backward)
        ctx.fused = not (training and self.dropout > 0.0) and not self._bf16
        if ctx.fused:
            # the fused kernel: q k^T, softmax and .v per (batch, head) on the (B, T, H, d) layout
            out, p = K.attention_forward(q, k, v, mask4, self.scale)
            ctx.p, ctx.factor = p, None
            return [out, p] if return_scores else out
        # dropout in training, or bfloat16 products (mixed_bfloat16): the products one by one
        scores = _mm(self, q.transpose(0, 2, 1, 3), k.transpose(0, 2, 3, 1))   # (B, H, T, S)
        p = K.masked_softmax_forward(scores, mask4, self.scale, out=scores)   # (in place: no new array)
        factor = None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else make_rng(None)
            factor = (rng.random(p.shape, dtype=p.dtype) >= self.dropout) * p.dtype.type(1.0 / (1.0 - self.dropout))
        ctx.p, ctx.factor = p, factor
        pd = p if factor is None else p * factor
        out = np.ascontiguousarray(_mm(self, pd, v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3))
        return [out, p] if return_scores else out

    def _backward(self, ctx, grad, need_input_grad):
        g_out, g_scores = grad if ctx.return_scores else (grad, None)
        if ctx.fused and g_scores is None:
            grads = K.attention_backward(g_out, ctx.q, ctx.k, ctx.v, ctx.p, ctx.mask4, self.scale, packed=ctx.packed)
            return [g if need else None for g, need in zip(grads, need_input_grad)]
        # dropout, bfloat16 products or a gradient of the returned scores: the products one by one
        qh, kh, vh = (a.transpose(0, 2, 1, 3) for a in (ctx.q, ctx.k, ctx.v))   # (B, H, steps, dim)
        pd = ctx.p if ctx.factor is None else ctx.p * ctx.factor
        gh = g_out.transpose(0, 2, 1, 3)                               # (B, H, T, value_dim)
        dv = _mm(self, pd.transpose(0, 1, 3, 2), gh).transpose(0, 2, 1, 3) if need_input_grad[2] else None
        dp = _mm(self, gh, vh.transpose(0, 1, 3, 2))                   # (B, H, T, S)
        if ctx.factor is not None:
            dp *= ctx.factor
        if g_scores is not None:
            dp += g_scores
        ds = K.masked_softmax_backward(dp, ctx.p, ctx.mask4, self.scale, out=dp)   # (the scale included)
        dq = _mm(self, ds, kh).transpose(0, 2, 1, 3) if need_input_grad[0] else None
        dk = _mm(self, ds.transpose(0, 1, 3, 2), qh).transpose(0, 2, 1, 3) if need_input_grad[1] else None
        return [dq, dk, dv]


def _add_scores_output(layer, out, shape):
    """A symbolic call's second output, the attention probabilities of `shape` (with
    return_attention_scores=True): added to the node the call recorded, whose output shapes
    (compute_output_shape, as in Keras) hold the attention output only. Returns (out, scores)."""
    node = out.node
    scores = _graph.KerasTensor(shape, out.dtype, history=(layer, out._keras_history[1], 1))
    node.outputs.append(scores)
    node.output_structure = (out, scores)
    return out, scores


def _seed_arg(seed):
    if seed is not None and (not _validation.is_int(seed) or seed < 0):
        raise ValueError(f"seed must be None or a non-negative integer; received seed={seed!r}")
    return None if seed is None else int(seed)


def _causal(t, s):
    """Keras's causal mask (1, T, S): query i attends to keys j <= i."""
    return np.tril(np.ones((t, s), bool))[None]


def _positive_int(name, value, optional=False):
    """A positive int below 2**31 (None allowed where `optional`)."""
    if optional:
        return _validation.positive_int(name, value, default=None)
    return _validation.positive_int(name, value)


def _output_shape_arg(value):
    if value is None:
        return None
    dims = [value] if _validation.is_int(value) else list(value) if isinstance(value, (list, tuple)) else None
    if not dims or not all(_validation.is_int(d) and 0 < int(d) < 2 ** 31 for d in dims):
        raise ValueError(f"output_shape must be None, a positive integer or a tuple of positive integers; received "
                         f"output_shape={value!r}")
    return tuple(int(d) for d in dims)


def _attention_axes_arg(value):
    """None, or the axis 1 (also written -2, or as a one-item list): the only case supported."""
    if value is None:
        return None
    axes = (value,) if _validation.is_int(value) else tuple(value) if isinstance(value, (list, tuple)) else None
    if axes is None or not all(_validation.is_int(a) for a in axes):
        raise ValueError(f"attention_axes must be None, an int, or a list or tuple of ints; received "
                         f"attention_axes={value!r}")
    if len(axes) != 1 or int(axes[0]) not in (1, -2):
        raise NotImplementedError(f"MultiHeadAttention(attention_axes={value!r}) is not supported yet: only the "
                                  "default, attention over axis 1 of (batch, sequence, features) inputs "
                                  "(attention_axes=None, 1 or -2)")
    return tuple(int(a) for a in axes)


class MultiHeadAttention(Layer):
    """Multi-head dot-product attention (Keras 3's MultiHeadAttention; see the module docstring).

    Called as `mha(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)`
    on (batch, T, dim) query and (batch, S, dim) value/key arrays (or symbolic tensors); returns
    (batch, T, output dims), and with return_attention_scores the tuple (output, the attention
    probabilities (batch, num_heads, T, S), before dropout).

    Weights, in Keras's order and shapes: query kernel (dim, heads, key_dim) and bias
    (heads, key_dim); key kernel and bias, likewise; value kernel (dim, heads, value_dim) and bias
    (heads, value_dim); attention_output kernel (heads, value_dim, *output_shape) and bias
    (*output_shape), output_shape defaulting to the query's last axis.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each attention head for query and key.
        value_dim: Size of each attention head for value (`None`: `key_dim`).
        dropout: Float between 0 and 1: the fraction of the attention scores to drop.
        use_bias: Whether the layer adds a bias vector.
        output_shape: Output shape of the function (without the batch axis), a function of the input shape, or
            `None` (inferred by calling it).
        attention_axes: Axes over which the attention is applied (`None`: all axes but batch, heads and
            features).
        sliding_window: Optional positive int: a query attends only to keys with `|i - j| < sliding_window`.
        flash_attention: `None`, `True` or `False`, as Keras; cynet always runs its fused masked-softmax
            kernel, and (as in Keras) `True` refuses `dropout > 0` and `return_attention_scores=True`.
        kernel_initializer: Initializer of the kernel weights (name or Initializer).
        bias_initializer: Initializer of the bias vector.
        kernel_regularizer: Regularizer applied to the kernel weights, or `None`.
        bias_regularizer: Regularizer applied to the bias vector, or `None`.
        activity_regularizer: Regularizer of the output (in training, `reg(output) / batch size` is
            added to the loss), or `None`.
        kernel_constraint: Constraint the optimizer applies to the projections' kernels after each
            update, or `None`.
        bias_constraint: Constraint applied to the projections' biases after each update, or `None`.
        use_gate: Whether to apply a learned sigmoid gate to the attention output.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    supports_masking = True   # query/value/key masks come from the inputs' masks (Keras 3)

    # Inputs: mha(query, value, key=None, ...), or (as merge layers take them) mha([query, value])
    # or mha([query, value, key]); a model replays a call with its packed inputs, a dict.
    _multi_input = True

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape: int | Sequence[int] | None = None,
                 attention_axes: int | Sequence[int] | None = None, sliding_window: int | None = None,
                 flash_attention: bool | None = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, bias_constraint: Any = None,
                 use_gate: bool = False, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.num_heads = _positive_int("num_heads", num_heads)
        self.key_dim = _positive_int("key_dim", key_dim)
        self.value_dim = _positive_int("value_dim", value_dim, optional=True) or self.key_dim
        self.dropout = _validation.real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.use_bias = _validation.flag("use_bias", use_bias)
        self._output_shape = _output_shape_arg(output_shape)
        self.attention_axes = _attention_axes_arg(attention_axes)
        self.sliding_window = _positive_int("sliding_window", sliding_window, optional=True)
        if not (flash_attention is None or isinstance(flash_attention, (bool, np.bool_))):
            raise ValueError(f"flash_attention must be None, True or False; received flash_attention={flash_attention!r}")
        if flash_attention and self.dropout > 0.0:
            raise ValueError("Dropout is not supported when flash attention is enabled: set dropout=0.0 to use "
                             "flash_attention=True")
        self.flash_attention = None if flash_attention is None else bool(flash_attention)
        self.kernel_initializer = check_initializer("kernel_initializer", kernel_initializer, "glorot_uniform")
        self.bias_initializer = check_initializer("bias_initializer", bias_initializer, "zeros")
        self.kernel_regularizer = check_regularizer("kernel_regularizer", kernel_regularizer)
        self.bias_regularizer = check_regularizer("bias_regularizer", bias_regularizer)
        self.kernel_constraint = check_constraint("kernel_constraint", kernel_constraint)
        self.bias_constraint = check_constraint("bias_constraint", bias_constraint)
        if not (use_gate is False or use_gate is np.False_):
            if not isinstance(use_gate, (bool, np.bool_)):
                raise ValueError(f"use_gate must be True or False; received use_gate={use_gate!r}")
            raise NotImplementedError("MultiHeadAttention(use_gate=True) is not supported yet")
        self.seed = _seed_arg(seed)
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self.key_dim))
        self._attention = _DotProductAttention(self._inverse_sqrt_key_dim, self.dropout,
                                               make_rng(seed) if seed is not None else None,
                                               name="attention", dtype=self.dtype_policy.name)

    # ------------------------------------------------------------------ calling
    def __call__(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
                 attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False, **kwargs):
        if kwargs:
            raise TypeError(f"{self._who()}: unexpected call arguments {sorted(kwargs)}")
        given = dict(query=query, value=value, key=key, query_mask=query_mask, value_mask=value_mask,
                     key_mask=key_mask, attention_mask=attention_mask)
        if value is None and isinstance(query, dict):   # the packed inputs of a recorded call (a model replaying it)
            unknown = set(query) - set(_INPUT_ARGS)
            if unknown or "query" not in query or "value" not in query:
                raise TypeError(f"{self._who()}: inputs given as a dict need the keys 'query' and 'value' (and "
                                f"optionally {_INPUT_ARGS[2:]}); received the keys {sorted(map(str, query))}")
            given.update(query)
        elif value is None and isinstance(query, (list, tuple)):   # mha([query, value]) or mha([query, value, key])
            if not 2 <= len(query) <= 3 or key is not None:
                raise TypeError(f"{self._who()}: inputs given as a list must be [query, value] or [query, value, "
                                f"key]; received a list of {len(query)}")
            given.update(zip(("query", "value", "key"), query))
        if given["value"] is None or given["query"] is None:
            raise TypeError(f"{self._who()}: inputs need a query and a value: call mha(query, value) (value=query "
                            f"for self-attention); received {'no value' if given['query'] is not None else 'None'}")
        # (a nested list is one array, not a structure of inputs)
        inputs = {name: _validation.as_array(f"{self._who()}: {name}", a) if isinstance(a, (list, tuple)) else a
                  for name, a in given.items() if a is not None}
        options = dict(return_attention_scores=_validation.flag("return_attention_scores", return_attention_scores),
                       use_causal_mask=_validation.flag("use_causal_mask", use_causal_mask))
        if self.flash_attention and options["return_attention_scores"]:
            raise ValueError("Returning attention scores is not supported when flash attention is enabled: set "
                             "flash_attention=False to get them")
        return super().__call__(inputs, training=bool(training), **options)

    def call(  # type: ignore[override]  # Keras's MultiHeadAttention.call arguments
            self, query: Any, value: Any = None, key: Any = None, query_mask: Any = None, value_mask: Any = None,
            key_mask: Any = None, attention_mask: Any = None, return_attention_scores: bool = False,
            training: bool = False, use_causal_mask: bool = False) -> Any:
        if isinstance(query, dict):
            query, value, key, query_mask, value_mask, key_mask, attention_mask = (query.get(n) for n in _INPUT_ARGS)
        key_in = value if key is None else key
        self._check_shapes(query.shape, value.shape, key_in.shape)
        mask = self._attention_mask(query.shape, value.shape, query_mask, value_mask, key_mask, attention_mask,
                                    use_causal_mask)
        q, k, v, packed = self._projections(query, value, key_in, training)
        out = self._attention([q, k, v], training=training, mask=mask, return_scores=return_attention_scores,
                              packed=packed)
        if return_attention_scores:
            out, scores = out
            return self._output_dense(out, training=training), scores
        return self._output_dense(out, training=training)

    def _projections(self, query, value, key, training):
        """(q, k, v, packed): the projected query, key and value, and the layout of their
        gradients (K.attention_backward's `packed`). Self-attention (query, value and key one
        array) runs the three projections as one product, and a key that is the value (also
        `key=None`) the key and value projections as one (_PackedProjection)."""
        if key is value:
            fused = self._packed.qkv if query is value else self._packed.kv
            if all(part.kernel.shape[0] == value.shape[-1] for part in fused._parts):   # (else: the parts refuse it)
                outs = fused(value, training=training)
                fused.record_parts()
                if query is value:
                    return (*outs, "qkv")
                return (self._query_dense(query, training=training), *outs, "kv")
        q = self._query_dense(query, training=training)
        k = self._key_dense(key, training=training)
        return q, k, self._value_dense(value, training=training), None

    def _symbolic_call(self, inputs, training, kwargs):
        out = super()._symbolic_call(inputs, training, kwargs)
        if not kwargs.get("return_attention_scores"):
            return out
        shapes = _graph.map_structure(lambda t: t.shape, inputs)
        return _add_scores_output(self, out, (shapes["query"][0], self.num_heads, shapes["query"][1],
                                              shapes["value"][1]))

    # --------------------------------------------------------------- shapes and masks
    def _unpack(self, query_shape, value_shape, key_shape):
        if isinstance(query_shape, dict):
            return query_shape["query"], query_shape["value"], query_shape.get("key")
        return query_shape, value_shape, key_shape

    def _check_shapes(self, query_shape, value_shape, key_shape):
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if shape is None:
                continue
            if len(shape) < 3:
                raise ValueError(f"{self._who()}: {name} must be 3-dimensional (batch, sequence, features); received "
                                 f"shape {tuple(shape)}")
            if len(shape) > 3:
                raise NotSupportedInput(f"{self._who()}: {name} of rank {len(shape)} (attention over several axes, "
                                          "Keras's attention_axes) is not supported yet: inputs must be (batch, "
                                          f"sequence, features); received shape {tuple(shape)}")
            if shape[-1] is None or shape[-1] == 0:
                raise ValueError(f"{self._who()}: {name} needs a known, non-empty last axis; received shape "
                                 f"{tuple(shape)}")
        if key_shape is not None and tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(f"{self._who()}: all dimensions of value and key, except the last one, must be equal; "
                             f"received value shape {tuple(value_shape)} and key shape {tuple(key_shape)}")
        batches = {s[0] for s in (query_shape, value_shape, key_shape) if s is not None and s[0] is not None}
        if len(batches) > 1:
            raise ValueError(f"{self._who()}: query, value and key must have the same batch size; received shapes "
                             f"{tuple(query_shape)}, {tuple(value_shape)}"
                             + ("" if key_shape is None else f" and {tuple(key_shape)}"))

    def _attention_mask(self, query_shape, value_shape, query_mask, value_mask, key_mask, attention_mask, causal):
        """The boolean mask (batch or 1, T or 1, S or 1) of the call, or None (Keras's
        _compute_attention_mask: every given mask ANDed)."""
        n, t, s = query_shape[0], query_shape[1], value_shape[1]
        parts = []
        for name, m, shape, expand in (("query_mask", query_mask, (n, t), -1), ("value_mask", value_mask, (n, s), -2),
                                       ("key_mask", key_mask, (n, s), -2)):
            if m is not None:
                if tuple(m.shape) != shape:
                    raise ValueError(f"{self._who()}: {name} must have shape {shape} (batch, "
                                     f"{'T, the query' if expand == -1 else 'S, the value'} length); received shape "
                                     f"{tuple(m.shape)}")
                parts.append(np.expand_dims(m != 0, expand))
        if causal:
            parts.append(_causal(t, s))
        if self.sliding_window is not None:
            i, j = np.arange(t)[:, None], np.arange(s)[None, :]
            parts.append((np.abs(i - j) < self.sliding_window)[None])
        if attention_mask is not None:
            m = attention_mask
            if m.ndim != 3 or any(a != 1 and a != b for a, b in zip(m.shape, (n, t, s))):
                raise ValueError(f"{self._who()}: attention_mask must have shape {(n, t, s)} (batch, T, S), or 1 on "
                                 f"some of these axes; received shape {tuple(m.shape)}")
            parts.append(m != 0)
        if not parts:
            return None
        mask = parts[0]
        for m in parts[1:]:
            mask = mask & m
        return mask

    # ----------------------------------------------------------------- build
    def _maybe_build(self, input_shape):
        """Build for the packed input shapes ({"query": shape, "value": shape, ...}), which the
        base class's tuple of one input shape cannot hold."""
        if not self.built:
            self.build(input_shape)
            self.built = True
            self.input_shape = tuple(self._unpack(input_shape, None, None)[0])
            self.output_shape = self.compute_output_shape(input_shape)

    def build(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> None:
        query_shape, value_shape, key_shape = self._unpack(query_shape, value_shape, key_shape)
        if value_shape is None:
            raise ValueError(f"{self._who()}: build needs the query and value shapes")
        self._check_shapes(query_shape, value_shape, key_shape)
        key_shape = value_shape if key_shape is None else key_shape
        common = dict(use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer, kernel_regularizer=self.kernel_regularizer,
                      bias_regularizer=self.bias_regularizer, kernel_constraint=self.kernel_constraint,
                      bias_constraint=self.bias_constraint, dtype=self.dtype_policy.name)
        heads = self.num_heads
        self._query_dense = self._sublayer(_Projection(1, (heads, self.key_dim), name="query", **common))
        self._query_dense._maybe_build(tuple(query_shape))
        self._key_dense = self._sublayer(_Projection(1, (heads, self.key_dim), name="key", **common))
        self._key_dense._maybe_build(tuple(key_shape))
        self._value_dense = self._sublayer(_Projection(1, (heads, self.value_dim), name="value", **common))
        self._value_dense._maybe_build(tuple(value_shape))
        out_dims = self._output_shape or (query_shape[-1],)
        self._output_dense = self._sublayer(_Projection(2, out_dims, name="attention_output", **common))
        self._output_dense._maybe_build(tuple(query_shape[:-1]) + (heads, self.value_dim))
        # the packed products of self-attention and of a key that is the value: in a namespace, not layer
        # attributes, so that nothing walking the sublayers (weights, Keras files) sees them (no weights of their own)
        parts = (self._query_dense, self._key_dense, self._value_dense)
        self._packed = types.SimpleNamespace(
            qkv=_PackedProjection(parts, name="query_key_value", dtype=self.dtype_policy.name),
            kv=_PackedProjection(parts[1:], name="key_value", dtype=self.dtype_policy.name))
        self.built = True

    def _sublayer(self, layer):
        """A projection made by build: while the model loader plans this layer's weights without
        allocating them (cynet.saving replaces its add_weight), the projection's weights are
        planned the same way, as this layer's own, in order."""
        planner = self.__dict__.get("add_weight")
        if planner is not None:
            layer.add_weight = planner
        return layer

    def compute_output_shape(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> Any:
        query_shape, value_shape, key_shape = self._unpack(query_shape, value_shape, key_shape)
        if value_shape is not None:
            self._check_shapes(query_shape, value_shape, key_shape)
        return tuple(query_shape[:-1]) + (self._output_shape or (query_shape[-1],))

    @property
    def query_dense(self) -> Any:
        """The query projection layer (an EinsumDense-like layer, as in Keras)."""
        return self._query_dense

    @property
    def key_dense(self) -> Any:
        """The key projection layer."""
        return self._key_dense

    @property
    def value_dense(self) -> Any:
        """The value projection layer."""
        return self._value_dense

    @property
    def output_dense(self) -> Any:
        """The output projection layer."""
        return self._output_dense

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        def ser(module, value):
            return None if value is None else module.serialize(module.get(value))
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias, "use_gate": False,
                "output_shape": self._output_shape, "attention_axes": self.attention_axes,
                "sliding_window": self.sliding_window,
                "kernel_initializer": ser(initializers, self.kernel_initializer),
                "bias_initializer": ser(initializers, self.bias_initializer),
                "kernel_regularizer": ser(regularizers, self.kernel_regularizer),
                "bias_regularizer": ser(regularizers, self.bias_regularizer),
                "activity_regularizer": None if self.activity_regularizer is None
                else regularizers.serialize(self.activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "seed": self.seed}


# ----------------------------------------------------------------------------- Attention, AdditiveAttention

class Attention(Layer):
    """Dot-product (Luong-style) attention (Keras 3's Attention), called on [query, value] or
    [query, value, key]: (batch, Tq, dim), (batch, Tv, dim_v), (batch, Tv, dim).

    scores = query @ key^T (times the trainable scalar `scale` with use_scale), or with
    score_mode="concat" concat_score_weight * sum(tanh(scale * (query_i + key_j)), -1); the output
    is softmax(scores) @ value, (batch, Tq, dim_v). `mask=[query_mask, value_mask]` (booleans
    (batch, Tq) and (batch, Tv)) masks keys (value_mask) and zeroes the output of masked queries
    (query_mask); use_causal_mask masks keys after each query's position; return_attention_scores
    also returns the attention distribution (batch, Tq, Tv), before dropout.

    Keras subtracts 1e9 from a masked score where MultiHeadAttention replaces it by -1e9: the two
    agree but for a row with every key masked, which Keras's documentation rules out; here such a
    row is uniform (the masked-softmax kernel's rule) and gets no gradient.

    Args:
        use_scale: Whether to learn a scalar that scales the attention scores.
        score_mode: Function to compute the attention scores: `"dot"` or `"concat"`.
        dropout: Float between 0 and 1: the fraction of the attention scores to drop.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    _multi_input = True
    _additive = False

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_scale = _validation.flag("use_scale", use_scale)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"score_mode must be one of {{'dot', 'concat'}}; received score_mode={score_mode!r}")
        self.score_mode = score_mode
        self.dropout = _validation.real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.seed = _seed_arg(seed)
        self._rng = make_rng(self.seed) if self.seed is not None else None

    # ----------------------------------------------------------------- shapes
    def _check_shapes(self, shapes):
        who = self._who()
        if not isinstance(shapes, (list, tuple)) or not 2 <= len(shapes) <= 3 or \
                not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"{who}: inputs must be a list [query, value] or [query, value, key]; received "
                             f"{len(shapes) if isinstance(shapes, (list, tuple)) else type(shapes).__name__} inputs")
        q, v = tuple(shapes[0]), tuple(shapes[1])
        k = tuple(shapes[2]) if len(shapes) > 2 else v
        for name, s in (("query", q), ("value", v), ("key", k)):
            if len(s) != 3:
                raise ValueError(f"{who}: inputs must be 3-dimensional (batch, steps, features); received {name} of "
                                 f"shape {s}")
        if len({s[0] for s in (q, v, k) if s[0] is not None}) > 1:
            raise ValueError(f"{who}: inputs must have one batch size; received shapes {[q, v, k][:len(shapes)]}")
        if None not in (v[1], k[1]) and v[1] != k[1]:
            raise ValueError(f"{who}: inputs value and key must have the same number of steps; received value "
                             f"shape {v} and key shape {k}")
        if None not in (q[2], k[2]) and q[2] != k[2]:
            raise ValueError(f"{who}: inputs query and key must have the same last axis (the scores compare them); "
                             f"received query shape {q} and key shape {k}")
        return q, v, k

    def _check_inputs(self, xs):
        super()._check_inputs(xs)
        self._check_shapes([x.shape for x in xs])

    def build(self, input_shape: Any) -> None:
        q, _, _ = self._check_shapes(input_shape)
        if self._additive:
            if q[-1] is None:
                raise ValueError(f"{self._who()}: the query needs a known last axis; received shape {q}")
            self.scale = self.add_weight((q[-1],), "glorot_uniform", name="scale") if self.use_scale else None
        else:
            self.scale = self.add_weight((), "ones", name="scale") if self.use_scale else None
            self.concat_score_weight = self.add_weight((), "ones", name="concat_score_weight") \
                if self.score_mode == "concat" else None
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        q, v, _ = self._check_shapes(input_shape)
        if self._additive and self.built and self.scale is not None and q[-1] != self.scale.shape[0]:
            raise ValueError(f"{self._who()}: the query's last axis must be {self.scale.shape[0]} (the scale's "
                             f"size); received query shape {q}")
        return tuple(q[:-1]) + (v[-1],)

    def __call__(self, inputs, training=False, mask=None, return_attention_scores=False, use_causal_mask=False,
                 **kwargs):
        if kwargs:
            raise TypeError(f"{self._who()}: unexpected call arguments {sorted(kwargs)}")
        options = dict(return_attention_scores=_validation.flag("return_attention_scores", return_attention_scores),
                       use_causal_mask=_validation.flag("use_causal_mask", use_causal_mask))
        if mask is not None:
            if not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3:
                raise ValueError(f"{self._who()}: mask must be a list [query_mask, value_mask]; received {mask!r}")
            options["mask"] = list(mask)
        out = super().__call__(inputs, training=training, **options)
        return tuple(out) if isinstance(out, list) else out   # (output, scores), as Keras returns them

    def _symbolic_call(self, inputs, training, kwargs):
        out = super()._symbolic_call(inputs, training, kwargs)
        if not kwargs.get("return_attention_scores"):
            return out
        q, v = inputs[0].shape, inputs[1].shape
        return _add_scores_output(self, out, (q[0], q[1], v[1]))

    # ----------------------------------------------------------------- computation
    def _key_mask(self, x, mask, shape, name):
        if mask is None:
            return None
        m = _validation.as_array(f"{self._who()}: {name}", mask)
        if m.shape != shape:
            raise ValueError(f"{self._who()}: {name} must have shape {shape}; received shape {m.shape}")
        return m != 0

    def _forward(self, ctx, inputs, training, mask=None, return_attention_scores=False, use_causal_mask=False):
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        if self._additive and self.scale is not None and q.shape[-1] != self.scale.shape[0]:
            raise ValueError(f"{self._who()}: the query's last axis must be {self.scale.shape[0]} (the scale's size); "
                             f"received query shape {q.shape}")
        mask = [None, None] if mask is None else mask
        q_mask = self._key_mask(q, mask[0], q.shape[:2], "mask[0] (the query mask)")
        v_mask = self._key_mask(v, mask[1], v.shape[:2], "mask[1] (the value mask)")
        scores_mask = None if v_mask is None else v_mask[:, None, :]
        if use_causal_mask:
            causal = _causal(q.shape[1], k.shape[1])
            scores_mask = causal if scores_mask is None else scores_mask & causal
        ctx.q, ctx.k, ctx.v, ctx.n_inputs = q, k, v, len(inputs)
        s = self._scores(ctx, q, k)   # (a new array the backward does not read: overwritten by p)
        p = K.masked_softmax_forward(s, scores_mask, 1.0, out=s)
        factor = None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else make_rng(None)
            factor = (rng.random(p.shape, dtype=p.dtype) >= self.dropout) * p.dtype.type(1.0 / (1.0 - self.dropout))
        pd = p if factor is None else p * factor
        out = _mm(self, pd, v)
        if q_mask is not None:
            out *= q_mask[:, :, None]
        ctx.p, ctx.pd, ctx.factor, ctx.scores_mask, ctx.q_mask = p, pd, factor, scores_mask, q_mask
        ctx.return_scores = return_attention_scores
        return [out, p] if return_attention_scores else out

    def _scores(self, ctx, q, k):
        """The (batch, Tq, Tv) scores, keeping in ctx what _scores_backward needs."""
        if self.score_mode == "dot" and not self._additive:
            raw = _mm(self, q, k.transpose(0, 2, 1))
            ctx.raw = raw
            return raw * self.scale.value if self.scale is not None else raw
        _validation.check_size(f"{self._who()}: inputs", q.shape[:2] + k.shape[1:], q.dtype.itemsize,
                               "the (batch, Tq, Tv, dim) tanh of the scores")
        a = q[:, :, None, :] + k[:, None, :, :]                     # (B, Tq, Tv, dim)
        if self._additive:
            t = np.tanh(a)
            ctx.t = t
            return (t * self.scale.value).sum(-1) if self.scale is not None else t.sum(-1)
        if self.scale is not None:
            ctx.a = a
            a = a * self.scale.value
        t = np.tanh(a)
        ctx.t, ctx.tsum = t, t.sum(-1)
        return ctx.tsum * self.concat_score_weight.value

    def _scores_backward(self, ctx, ds):
        """(dq, dk) from the scores' gradient ds, adding the weights' gradients."""
        q, k = ctx.q, ctx.k
        if self.score_mode == "dot" and not self._additive:
            if self.scale is not None:
                add_grad(self.scale, np.asarray((ds * ctx.raw).sum(), ds.dtype))
                ds = ds * self.scale.value
            return _mm(self, ds, k), _mm(self, ds.transpose(0, 2, 1), q)
        t = ctx.t
        if self._additive:
            if self.scale is not None:
                add_grad(self.scale, np.einsum("bqv,bqvd->d", ds, t))
                da = ds[..., None] * self.scale.value * (1 - t * t)
            else:
                da = ds[..., None] * (1 - t * t)
        else:
            add_grad(self.concat_score_weight, np.asarray((ds * ctx.tsum).sum(), ds.dtype))
            da = (ds * self.concat_score_weight.value)[..., None] * (1 - t * t)
            if self.scale is not None:
                add_grad(self.scale, np.asarray((da * ctx.a).sum(), ds.dtype))
                da = da * self.scale.value
        return da.sum(2), da.sum(1)

    def _backward(self, ctx, grad, need_input_grad):
        g_out, g_scores = grad if ctx.return_scores else (grad, None)
        if ctx.q_mask is not None:
            g_out = g_out * ctx.q_mask[:, :, None]
        dv = _mm(self, ctx.pd.transpose(0, 2, 1), g_out)
        dp = _mm(self, g_out, ctx.v.transpose(0, 2, 1))
        if ctx.factor is not None:
            dp *= ctx.factor
        if g_scores is not None:
            dp += g_scores
        ds = K.masked_softmax_backward(dp, ctx.p, ctx.scores_mask, 1.0, out=dp)
        dq, dk = self._scores_backward(ctx, ds)
        if ctx.n_inputs == 2:   # the value is the key
            return [dq, dv + dk]
        return [dq, dv, dk]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention (Keras 3's AdditiveAttention): as Attention, with the
    scores sum(scale * tanh(query_i + key_j), -1), `scale` a trainable (dim,) vector
    (glorot_uniform) with use_scale=True (the default), ones without.

    Args:
        use_scale: Whether to learn a scalar that scales the attention scores.
        dropout: Float between 0 and 1: the fraction of the attention scores to drop.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
    """

    _additive = True

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["score_mode"]
        return config
