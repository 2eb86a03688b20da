"""Attention layers (Keras 3: keras/src/layers/attention/multi_head_attention.py).

MultiHeadAttention is a composite layer: its call is four projection layers (Keras's EinsumDense
sublayers "query", "key", "value" and "attention_output", with their kernel and bias shapes and
weight order) and one fused dot-product attention op, each recorded on the tape with its own
backward, so a shared MHA (self-attention `mha(x, x)`, one layer used twice, predict from many
threads) keeps every per-call value in the call's context and gets the sum of its gradients.

The attention op computes, per head, with NumPy's matmul (BLAS) around the fused masked-softmax
kernel (cynet.kernels.masked_softmax_forward / _backward):

    scores = (q / sqrt(key_dim)) k^T          (batch, heads, T, S)
    p      = softmax(where(mask, scores, -1e9))   over the keys (a fully masked row is uniform)
    out    = dropout(p) v

The mask is Keras's: the AND of `attention_mask` (batch, T, S), `query_mask` (batch, T) as
(batch, T, 1), `value_mask` and `key_mask` (batch, S) as (batch, 1, S), the causal mask (a query
attends to keys at or before its position) with `use_causal_mask=True`, and the band
|i - j| < sliding_window. True (or nonzero) keeps a position.

One difference from Keras: Keras 3 replaces the `query_mask` argument by the mask carried by the
query tensor itself (from Embedding(mask_zero=True) or Masking), so an explicit `query_mask=` is
ignored there; cynet arrays carry no mask, and `query_mask=` is honoured.
"""
import math

import numpy as np

from .. import _validation, initializers, regularizers
from .. import graph as _graph
from .. import kernels as K
from ..utils.rng import make_rng
from .base import Layer, add_grad, check_initializer, check_regularizer

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
                 bias_regularizer, **kwargs):
        super().__init__(**kwargs)
        self.n_in, self.out_dims, self.use_bias = int(n_in), tuple(out_dims), bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def build(self, input_shape):
        in_dims = tuple(input_shape[-self.n_in:])
        if len(input_shape) < self.n_in + 1 or any(d is None for d in in_dims):
            raise ValueError(f"{self._who()}: inputs need known sizes on their last {self.n_in} axes; received shape "
                             f"{tuple(input_shape)}")
        self.kernel = self.add_weight(in_dims + self.out_dims, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, name="kernel")
        self.bias = self.add_weight(self.out_dims, self.bias_initializer, regularizer=self.bias_regularizer,
                                    name="bias") if self.use_bias else None
        self._input_axes = {-i: int(d) for i, d in zip(range(self.n_in, 0, -1), in_dims)}
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-self.n_in]) + self.out_dims

    def _forward(self, ctx, inputs, training):
        fan_in = int(np.prod(self.kernel.shape[:self.n_in]))
        x2 = inputs.reshape(-1, fan_in)
        y = x2 @ self.kernel.value.reshape(fan_in, -1)
        if self.use_bias:
            y += self.bias.value.reshape(-1)
        ctx.x2, ctx.shape = x2, inputs.shape
        return y.reshape(inputs.shape[:-self.n_in] + self.out_dims)

    def _backward(self, ctx, grad, need_input_grad):
        w2 = self.kernel.value.reshape(ctx.x2.shape[1], -1)
        g2 = grad.reshape(-1, w2.shape[1])
        add_grad(self.kernel, (ctx.x2.T @ g2).reshape(self.kernel.shape))
        if self.use_bias:
            add_grad(self.bias, g2.sum(axis=0).reshape(self.bias.shape))
        return (g2 @ w2.T).reshape(ctx.shape) if need_input_grad else None


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

    def _forward(self, ctx, inputs, training, mask=None, return_scores=False):
        q, k, v = inputs
        qh = q.transpose(0, 2, 1, 3)            # (B, H, T, key_dim)
        kh = k.transpose(0, 2, 3, 1)            # (B, H, key_dim, S)
        vh = v.transpose(0, 2, 1, 3)            # (B, H, S, value_dim)
        mask4 = None if mask is None else mask[:, None]
        p = K.masked_softmax_forward(qh @ kh, mask4, self.scale)
        factor = None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else make_rng(None)
            factor = (rng.random(p.shape, dtype=p.dtype) >= self.dropout) * p.dtype.type(1.0 / (1.0 - self.dropout))
        pd = p if factor is None else p * factor
        ctx.qh, ctx.kh, ctx.vh, ctx.p, ctx.pd, ctx.factor, ctx.mask4 = qh, kh, vh, p, pd, factor, mask4
        ctx.return_scores = return_scores
        out = np.ascontiguousarray((pd @ vh).transpose(0, 2, 1, 3))
        return [out, p] if return_scores else out

    def _backward(self, ctx, grad, need_input_grad):
        g_out, g_scores = grad if ctx.return_scores else (grad, None)
        gh = g_out.transpose(0, 2, 1, 3)                               # (B, H, T, value_dim)
        dv = (ctx.pd.transpose(0, 1, 3, 2) @ gh).transpose(0, 2, 1, 3) if need_input_grad[2] else None
        dp = gh @ ctx.vh.transpose(0, 1, 3, 2)                         # (B, H, T, S)
        if ctx.factor is not None:
            dp *= ctx.factor
        if g_scores is not None:
            dp += g_scores
        ds = K.masked_softmax_backward(dp, ctx.p, ctx.mask4, self.scale)   # (the scale included)
        dq = (ds @ ctx.kh.transpose(0, 1, 3, 2)).transpose(0, 2, 1, 3) if need_input_grad[0] else None
        dk = (ds.transpose(0, 1, 3, 2) @ ctx.qh).transpose(0, 2, 1, 3) if need_input_grad[1] else None
        return [dq, dk, dv]


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
    """

    # Inputs: mha(query, value, key=None, ...), or (as merge layers take them) mha([query, value])
    # or mha([query, value, key]); a model replays a call with its packed inputs, a dict.
    _multi_input = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None, **kwargs):
        super().__init__(**kwargs)
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
        for name, value in (("activity_regularizer", activity_regularizer), ("kernel_constraint", kernel_constraint),
                            ("bias_constraint", bias_constraint)):
            if value is not None:
                raise NotImplementedError(f"MultiHeadAttention({name}=...) is not supported yet; pass {name}=None")
        if not (use_gate is False or use_gate is np.False_):
            if not isinstance(use_gate, (bool, np.bool_)):
                raise ValueError(f"use_gate must be True or False; received use_gate={use_gate!r}")
            raise NotImplementedError("MultiHeadAttention(use_gate=True) is not supported yet")
        if seed is not None and (not _validation.is_int(seed) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer; received seed={seed!r}")
        self.seed = None if seed is None else int(seed)
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self.key_dim))
        self._attention = _DotProductAttention(self._inverse_sqrt_key_dim, self.dropout,
                                               make_rng(seed) if seed is not None else None,
                                               name="attention", dtype=self.dtype.name)

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

    def call(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=False, use_causal_mask=False):
        if isinstance(query, dict):
            query, value, key, query_mask, value_mask, key_mask, attention_mask = (query.get(n) for n in _INPUT_ARGS)
        key_in = value if key is None else key
        self._check_shapes(query.shape, value.shape, key_in.shape)
        mask = self._attention_mask(query.shape, value.shape, query_mask, value_mask, key_mask, attention_mask,
                                    use_causal_mask)
        q = self._query_dense(query, training=training)
        k = self._key_dense(key_in, training=training)
        v = self._value_dense(value, training=training)
        out = self._attention([q, k, v], training=training, mask=mask, return_scores=return_attention_scores)
        if return_attention_scores:
            out, scores = out
            return self._output_dense(out, training=training), scores
        return self._output_dense(out, training=training)

    def _symbolic_call(self, inputs, training, kwargs):
        out = super()._symbolic_call(inputs, training, kwargs)
        if not kwargs.get("return_attention_scores"):
            return out
        # The node gets a second output, the attention probabilities (batch, heads, T, S).
        node = out.node
        shapes = _graph.map_structure(lambda t: t.shape, inputs)
        scores = _graph.KerasTensor((shapes["query"][0], self.num_heads, shapes["query"][1], shapes["value"][1]),
                                    out.dtype, history=(self, out._keras_history[1], 1))
        node.outputs.append(scores)
        node.output_structure = (out, scores)
        return out, scores

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
            parts.append(np.tril(np.ones((t, s), bool))[None])
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

    def build(self, query_shape, value_shape=None, key_shape=None):
        query_shape, value_shape, key_shape = self._unpack(query_shape, value_shape, key_shape)
        if value_shape is None:
            raise ValueError(f"{self._who()}: build needs the query and value shapes")
        self._check_shapes(query_shape, value_shape, key_shape)
        key_shape = value_shape if key_shape is None else key_shape
        common = dict(use_bias=self.use_bias, kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer, kernel_regularizer=self.kernel_regularizer,
                      bias_regularizer=self.bias_regularizer, dtype=self.dtype.name)
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
        self.built = True

    def _sublayer(self, layer):
        """A projection made by build: while the model loader plans this layer's weights without
        allocating them (cynet.saving replaces its add_weight), the projection's weights are
        planned the same way, as this layer's own, in order."""
        planner = self.__dict__.get("add_weight")
        if planner is not None:
            layer.add_weight = planner
        return layer

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        query_shape, value_shape, key_shape = self._unpack(query_shape, value_shape, key_shape)
        if value_shape is not None:
            self._check_shapes(query_shape, value_shape, key_shape)
        return tuple(query_shape[:-1]) + (self._output_shape or (query_shape[-1],))

    @property
    def query_dense(self):
        return self._query_dense

    @property
    def key_dense(self):
        return self._key_dense

    @property
    def value_dense(self):
        return self._value_dense

    @property
    def output_dense(self):
        return self._output_dense

    # ----------------------------------------------------------------- config
    def get_config(self):
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
                "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
                "seed": self.seed}
