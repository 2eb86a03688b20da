"""EinsumDense (Keras 3): a dense layer whose product with its kernel is an einsum equation.

The equation takes Keras's three forms, "X,Y->Z", "...X,Y->...Z" and "X...,Y->Z..." (X the input's
subscripts, Y the kernel's, Z the output's). At build the ellipsis is spelled out with unused
letters for the input's rank, so the forward and both gradients are plain einsum products (one
np.tensordot each for the usual contractions):
dkernel = einsum(X,Z->Y)(inputs, grad), dinputs = einsum(Z,Y->X)(grad, kernel), an input
subscript found in neither the kernel nor the output (summed away in the forward) getting the
gradient broadcast along it.

Shapes follow Keras's rules (`_analyze_einsum_string`): the output is the batch size, the sizes
`output_shape` gives (None: taken from the input) and the sizes the ellipsis stands for; each kernel
axis is sized from the output when its subscript is there, else from the input; the bias spans the
output subscripts from the first one in `bias_axes` to the end (size 1 on those not in
`bias_axes`). Under mixed_bfloat16 the products take bfloat16-rounded operands, as Dense's. A
VarianceScaling kernel initializer (glorot_uniform by default) draws with Keras's
fans: the product of the kernel's input-side axes and of its output-side axes.
"""
import re
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation, activations, constraints, initializers, kernels, regularizers
from .base import Layer, add_grad, set_kernel_options
from .core import ActivationMixin

_FORMS = (("none", r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"),
          ("left", r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)"),
          ("right", r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\."))


def _parse_equation(equation):
    """(form, input subscripts, kernel subscripts, output subscripts), or ValueError naming `equation`."""
    if not isinstance(equation, str):
        raise TypeError(f"equation must be a string such as 'ab,bc->ac'; received equation={equation!r}")
    for form, pattern in _FORMS:
        match = re.fullmatch(pattern, equation.replace(" ", ""))
        if match:
            subs = match.groups()
            for part in subs:
                if len(set(part)) != len(part):
                    raise NotImplementedError(f"EinsumDense: a subscript repeated within one operand (a diagonal) "
                                              f"is not supported; received equation={equation!r}")
            ins, ws, outs = subs
            for ch in outs:
                if ch not in ins and ch not in ws:
                    raise ValueError(f"equation: output subscript {ch!r} is in neither the input {ins!r} nor the "
                                     f"kernel {ws!r}; received equation={equation!r}")
            for ch in ws:
                if ch not in ins and ch not in outs:
                    raise ValueError(f"equation: kernel subscript {ch!r} is in neither the input {ins!r} nor the "
                                     f"output {outs!r}; received equation={equation!r}")
            return form, ins, ws, outs
    raise ValueError(f"equation must have the form 'X,Y->Z', '...X,Y->...Z' or 'X...,Y->Z...' (X, Y, Z letters); "
                     f"received equation={equation!r}")


def _partial_shape(output_shape):
    """Keras's `output_shape`: an int or a sequence of positive ints / None, as a tuple."""
    values = [output_shape] if _validation.is_int(output_shape) else output_shape
    if not isinstance(values, (list, tuple)) or not all(
            v is None or (_validation.is_int(v) and int(v) > 0) for v in values):
        raise ValueError(f"output_shape must be a positive int or a sequence of positive ints or None; received "
                         f"output_shape={output_shape!r}")
    return tuple(None if v is None else int(v) for v in values)


class _Plan:
    """The explicit equation and the shapes of one input rank (see the module docstring)."""

    def __init__(self, who, parsed, bias_axes, input_shape, partial):
        form, ins, ws, outs = parsed
        ndim = len(input_shape)
        elided = ndim - len(ins)
        if elided < 0 or (form == "none" and elided != 0):
            raise ValueError(f"{who}: inputs of shape {tuple(input_shape)} do not have the rank the equation's "
                             f"input subscripts {ins!r} give")
        spare = [c for c in string.ascii_letters if c not in ins + ws + outs][:elided]
        extra = "".join(spare)
        self.ins = extra + ins if form == "left" else ins + extra
        self.outs = extra + outs if form == "left" else outs + extra
        self.ws = ws
        full = [input_shape[0]] + (list(input_shape[1:elided]) if form == "left" else []) + list(partial) + \
            (list(input_shape[len(ins):]) if form == "right" else [])
        if len(full) != len(self.outs):
            wanted = len(self.outs) - len(full) + len(partial)
            raise ValueError(f"{who}: output_shape={partial} does not fit the equation's output subscripts "
                             f"{outs!r} for inputs of rank {ndim}: it should have {wanted} entries (the output's "
                             f"sizes without the batch axis{' and the ellipsis' if elided else ''})")
        sizes = dict(zip(self.ins, input_shape))
        for j, ch in enumerate(self.outs):
            if j == 0 and ch in sizes:
                full[j] = sizes[ch]
            elif ch in sizes:
                if full[j] is not None and sizes[ch] is not None and full[j] != sizes[ch]:
                    raise ValueError(f"{who}: input shape and output shape do not match at shared dimension {ch!r}: "
                                     f"the input has {sizes[ch]}, output_shape gives {full[j]}")
                full[j] = sizes[ch] if sizes[ch] is not None else full[j]
            elif full[j] is None:
                raise ValueError(f"{who}: output_shape must give the size of output dimension {ch!r} (it is not an "
                                 f"input dimension); received output_shape={partial}")
        self.output_shape = tuple(full)
        out_sizes = dict(zip(self.outs, full))
        self.kernel_shape = tuple(out_sizes[c] if c in out_sizes else sizes[c] for c in ws)
        if any(s is None for s in self.kernel_shape):
            raise ValueError(f"{who}: the kernel's sizes {self.kernel_shape} need known input sizes; received input "
                             f"shape {tuple(input_shape)}")
        self.output_axes = [i for i, c in enumerate(ws) if c in out_sizes]
        self.input_axes = [i for i, c in enumerate(ws) if c not in out_sizes]
        self.bias_shape = None
        if bias_axes:
            first = min(outs.index(c) for c in bias_axes)
            self.bias_shape = tuple(out_sizes[c] if c in bias_axes else 1 for c in outs[first:]) + \
                ((1,) * elided if form == "right" else ())
            if any(s is None for s in self.bias_shape):
                raise ValueError(f"{who}: the bias's sizes {self.bias_shape} need known sizes of the output "
                                 f"dimensions {bias_axes!r}")
        self.forward = f"{self.ins},{ws}->{self.outs}"
        self.kernel_grad = f"{self.ins},{self.outs}->{ws}"
        self.present = "".join(c for c in self.ins if c in self.outs or c in ws)
        self.input_grad = f"{self.outs},{ws}->{self.present}"


def _fanned(initializer, plan):
    """A VarianceScaling initializer drawing with Keras's fans for the kernel (i.i.d. values, so a
    (fan_in, fan_out) draw reshaped has the kernel's distribution); any other initializer as is."""
    init = initializers.get(initializer)
    if not isinstance(init, initializers.VarianceScaling):
        return init
    fan_in = int(np.prod([plan.kernel_shape[i] for i in plan.input_axes]))
    fan_out = int(np.prod([plan.kernel_shape[i] for i in plan.output_axes]))

    def draw(shape, dtype=None):
        return np.asarray(init((fan_in, fan_out), dtype=dtype)).reshape(shape)
    return draw


class EinsumDense(ActivationMixin, Layer):
    """A dense layer computed by an einsum equation (Keras 3's EinsumDense):
    `activation(einsum(equation, inputs, kernel) + bias)`.

    Examples (Keras's): `EinsumDense("ab,bc->ac", output_shape=64, bias_axes="c")` is Dense(64);
    `EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")` a Dense on each step of a
    sequence; `EinsumDense("abc,cde->abde", output_shape=(None, 4, 16), bias_axes="de")` a projection
    to heads, as in multi-head attention; `"...x,xy->...y"` any leading dimensions.

    Weights, in Keras order: "kernel" (shape from the equation, see the module docstring) and "bias"
    (when `bias_axes` is given).

    Args:
        equation: The einsum equation: input, kernel and output subscripts ("ab,bc->ac"), with an
            optional ellipsis at the start ("...b,bc->...c") or the end ("ab...,bc->ac...") of the
            input and output.
        output_shape: The output's shape without the batch axis (and the ellipsis's axes): an int or
            a sequence; `None` entries are taken from the input.
        activation: Activation function (name or callable); `None` means linear.
        bias_axes: The output subscripts the bias spans (a string of letters of the output), or
            `None` for no bias.
        kernel_initializer: Initializer of the kernel (name or Initializer).
        bias_initializer: Initializer of the bias.
        kernel_regularizer: Regularizer applied to the kernel, or `None`.
        bias_regularizer: Regularizer applied to the bias, or `None`.
        kernel_constraint: Constraint the optimizer applies to the kernel after each update, or `None`.
        bias_constraint: Constraint applied to the bias after each update, or `None`.
        lora_rank: Keras's LoRA rank: not implemented (only `None`).
        lora_alpha: Keras's LoRA scale: not implemented (only `None`).
        gptq_unpacked_column_size: Keras's GPTQ quantization detail: not implemented (only `None`).
        quantization_config: Keras's quantization settings: not implemented (only `None`).
    """

    supports_masking = True   # the mask passes through, as Dense's
    # Set by set_kernel_options (declared for the type checker).
    activation: Any
    use_bias: bool
    kernel_initializer: Any
    bias_initializer: Any
    kernel_regularizer: Any
    bias_regularizer: Any
    kernel_constraint: Any
    bias_constraint: Any

    def __init__(self, equation: str, output_shape: int | Sequence[int | None], activation: Any = None,
                 bias_axes: str | None = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, lora_rank: int | None = None,
                 lora_alpha: float | None = None, gptq_unpacked_column_size: int | None = None,
                 quantization_config: Any = None, **kwargs: Any) -> None:
        for name, value in (("lora_rank", lora_rank), ("lora_alpha", lora_alpha),
                            ("gptq_unpacked_column_size", gptq_unpacked_column_size),
                            ("quantization_config", quantization_config)):
            if value is not None:
                raise NotImplementedError(f"EinsumDense({name}={value!r}) is not implemented in cynet (LoRA and "
                                          f"quantization); use {name}=None")
        super().__init__(**kwargs)
        self._parsed = _parse_equation(equation)
        self.equation = equation
        self.partial_output_shape = _partial_shape(output_shape)
        if bias_axes is not None:
            if not isinstance(bias_axes, str) or not bias_axes or any(c not in self._parsed[3] for c in bias_axes):
                raise ValueError(f"bias_axes must be None or a string of the output subscripts "
                                 f"{self._parsed[3]!r}; received bias_axes={bias_axes!r}")
        self.bias_axes = bias_axes
        set_kernel_options(self, activation, bias_axes is not None, kernel_initializer, bias_initializer,
                           kernel_regularizer, bias_regularizer, kernel_constraint, bias_constraint)

    def _plan(self, input_shape):
        return _Plan(self._who(), self._parsed, self.bias_axes, tuple(input_shape), self.partial_output_shape)

    def build(self, input_shape):
        plan = self._plan(input_shape)
        self._einsum = plan
        self._built_ndim = len(input_shape)
        self._input_axes = {i: int(s) for i, (c, s) in enumerate(zip(plan.ins, input_shape))
                            if i > 0 and c in plan.ws and s is not None}
        self.kernel = self.add_weight(plan.kernel_shape, _fanned(self.kernel_initializer, plan),
                                      regularizer=self.kernel_regularizer, name="kernel",
                                      constraint=self.kernel_constraint)
        self.bias = (None if plan.bias_shape is None else
                     self.add_weight(plan.bias_shape, self.bias_initializer, regularizer=self.bias_regularizer,
                                     name="bias", constraint=self.bias_constraint))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._plan(input_shape).output_shape

    def _product(self, equation, a, b):
        """The einsum of two operands (`_contract`); under a bfloat16 policy (mixed_bfloat16) of
        their bfloat16 roundings, as Dense's products (exact float32 products of 8-bit mantissas,
        float32 sums)."""
        if self._bf16 and a.dtype == np.float32 and b.dtype == np.float32:
            a, b = kernels.round_bf16(a), kernels.round_bf16(b)
        return _contract(equation, a, b)

    def _forward(self, ctx, inputs, training):
        plan = self._einsum
        ctx.inputs = inputs
        z = self._product(plan.forward, inputs, self.kernel.value)
        if self.bias is not None:
            z += self.bias.value     # (z is the product's own new array)
        return self._activate(ctx, z)

    def _backward_from_logits(self, ctx, grad_logits, need_input_grad):
        plan, x = self._einsum, ctx.inputs
        add_grad(self.kernel, self._product(plan.kernel_grad, x, grad_logits))
        if self.bias is not None:
            add_grad(self.bias, _sum_to(grad_logits, self.bias.shape))
        if not need_input_grad:
            return None
        dx = self._product(plan.input_grad, grad_logits, self.kernel.value)
        if len(plan.present) != len(plan.ins):   # input subscripts summed away: the gradient is broadcast
            kept = [x.shape[i] if c in plan.present else 1 for i, c in enumerate(plan.ins)]
            dx = np.ascontiguousarray(np.broadcast_to(dx.reshape(kept), x.shape))
        return dx

    def get_config(self) -> dict[str, Any]:
        def ser(value, module):
            return None if value is None else module.serialize(module.get(value))
        return {**super().get_config(), "output_shape": self.partial_output_shape, "equation": self.equation,
                "activation": activations.serialize(self.activation), "bias_axes": self.bias_axes,
                "kernel_initializer": ser(self.kernel_initializer, initializers),
                "bias_initializer": ser(self.bias_initializer, initializers),
                "kernel_regularizer": ser(self.kernel_regularizer, regularizers),
                "bias_regularizer": ser(self.bias_regularizer, regularizers),
                "activity_regularizer": ser(self.activity_regularizer, regularizers),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "quantization_config": None}


def _contract(equation, a, b):
    """np.einsum("X,Y->Z", a, b) as one np.tensordot (a BLAS product) where the equation is a
    plain contraction (every subscript shared by the operands summed, every other one kept), the
    result contiguous: NumPy's einsum returns some of these products as transposed views, whose
    copy costs as much as a third of the product. Other equations go to np.einsum."""
    operands, out = equation.split("->")
    sa, sb = operands.split(",")
    shared = [c for c in sa if c in sb]
    if any(c in out for c in shared) or any(c not in out for c in sa + sb if c not in shared):
        return np.ascontiguousarray(np.einsum(equation, a, b, optimize=True))
    z = np.tensordot(a, b, axes=([sa.index(c) for c in shared], [sb.index(c) for c in shared]))
    rest = [c for c in sa + sb if c not in shared]
    return np.ascontiguousarray(z.transpose([rest.index(c) for c in out]))


def _sum_to(grad, shape):
    """The gradient of a broadcast to grad's shape from `shape` (trailing-aligned): grad summed
    over the leading axes and the axes where `shape` has size 1."""
    lead = grad.ndim - len(shape)
    g = grad.sum(axis=tuple(range(lead))) if lead else grad
    ones = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=ones, keepdims=True) if ones else g
