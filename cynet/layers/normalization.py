"""BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization, RMSNormalization."""
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation, constraints, initializers, kernels, regularizers
from .base import Layer, add_grad, check_constraint, check_initializer, check_regularizer


class BatchNormalization(Layer):
    """Keras 3 BatchNormalization: batch statistics in training (moving statistics updated as
    `moving = moving * momentum + batch * (1 - momentum)`), moving statistics at inference.
    A non-trainable layer always runs in inference mode, as in Keras 3.

    Weights, in Keras order: gamma (if scale), beta (if center), moving_mean, moving_variance.

    Args:
        axis: The axis (or axes) the layer operates along.
        momentum: Momentum of the moving averages.
        epsilon: Small float added to the variance to avoid dividing by zero.
        center: Whether to add the learned offset `beta`.
        scale: Whether to multiply by the learned scale `gamma`.
        beta_initializer: Initializer of `beta`.
        gamma_initializer: Initializer of `gamma`.
        moving_mean_initializer: Initializer of the moving mean.
        moving_variance_initializer: Initializer of the moving variance.
        beta_regularizer: Regularizer of `beta`, or `None`.
        gamma_regularizer: Regularizer of `gamma`, or `None`.
        beta_constraint: Constraint the optimizer applies to `beta` after each update, or `None`.
        gamma_constraint: Constraint the optimizer applies to `gamma` after each update, or `None`.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    _nonempty_input = True

    def __init__(self, axis: int | list[int] | tuple[int, ...] = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = "zeros",
                 gamma_initializer: Any = "ones", moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None, gamma_constraint: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        single = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        if not _validation.is_int(single):
            raise ValueError(f"axis must be a single int; received axis={axis!r}")
        self.axis = int(single)
        self.momentum = _validation.real("momentum", momentum, low=0.0, high=1.0)
        self.epsilon = _validation.real("epsilon", epsilon, low=0.0, low_open=True)
        self.center = _validation.flag("center", center)
        self.scale = _validation.flag("scale", scale)
        self.beta_initializer = check_initializer("beta_initializer", beta_initializer, "zeros")
        self.gamma_initializer = check_initializer("gamma_initializer", gamma_initializer, "ones")
        self.moving_mean_initializer = check_initializer("moving_mean_initializer", moving_mean_initializer, "zeros")
        self.moving_variance_initializer = check_initializer("moving_variance_initializer",
                                                             moving_variance_initializer, "ones")
        self.beta_regularizer = check_regularizer("beta_regularizer", beta_regularizer)
        self.gamma_regularizer = check_regularizer("gamma_regularizer", gamma_regularizer)
        self.beta_constraint = check_constraint("beta_constraint", beta_constraint)
        self.gamma_constraint = check_constraint("gamma_constraint", gamma_constraint)

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"axis={self.axis} is not a feature axis of inputs with shape {input_shape}")
        self._axis = self.axis % ndim
        c = input_shape[self._axis]
        if c is None:
            raise ValueError(f"BatchNormalization '{self.name}' needs a known size on axis {self.axis}")
        self._built_ndim = ndim
        self._input_axes = {self._axis: c}
        self.gamma = (self.add_weight((c,), self.gamma_initializer, regularizer=self.gamma_regularizer, name="gamma",
                                      constraint=self.gamma_constraint) if self.scale else None)
        self.beta = (self.add_weight((c,), self.beta_initializer, regularizer=self.beta_regularizer, name="beta",
                                     constraint=self.beta_constraint) if self.center else None)
        self.moving_mean = self.add_weight((c,), self.moving_mean_initializer, trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight((c,), self.moving_variance_initializer, trainable=False,
                                               name="moving_variance")
        self.built = True

    def _to_last(self, a):
        return a if self._axis == a.ndim - 1 else np.ascontiguousarray(np.moveaxis(a, self._axis, -1))

    def _from_last(self, a):
        return a if self._axis == a.ndim - 1 else np.moveaxis(a, -1, self._axis)

    def _checked_mask(self, mask, x, what="mask"):
        """Keras's rule: one axis less than the inputs (the feature axis last)."""
        m = super()._checked_mask(mask, x, what)
        if m.ndim != x.ndim - 1:
            raise ValueError(f"{self._who()}: {what} must have one dimension less than the inputs of shape "
                             f"{x.shape}; received shape {m.shape}")
        return m

    def _forward(self, ctx, inputs, training, mask=None):
        x = self._to_last(inputs)
        gamma = self.gamma.value if self.scale else None
        beta = self.beta.value if self.center else None
        ctx.training = training and self.trainable
        ctx.x = x
        ctx.weights = None
        if ctx.training and mask is not None:
            kept = self._to_last(np.broadcast_to(mask[..., None], inputs.shape))   # (Keras: over all but the last axis)
            y = self._masked_train_forward(ctx, x, kept, gamma, beta)
        elif ctx.training:
            y, ctx.mean, ctx.inv_std = kernels.batch_norm_train_forward(
                x, gamma, beta, self.moving_mean.value, self.moving_variance.value, momentum=self.momentum,
                epsilon=self.epsilon)
        else:
            y = kernels.batch_norm_inference_forward(x, gamma, beta, self.moving_mean.value,
                                                     self.moving_variance.value, epsilon=self.epsilon)
            ctx.moving_mean = self.moving_mean.value.copy()   # the statistics this call used
            ctx.moving_variance = self.moving_variance.value.copy()
        return self._from_last(y)

    def _masked_train_forward(self, ctx, x, kept, gamma, beta):
        """Training on a masked batch (Keras 3's masked moments): the mean and variance of the
        `kept` positions only (sums divided by their count + 1e-7, Keras's backend.epsilon),
        every position normalized with them, the moving statistics updated with them."""
        w = kept.astype(x.dtype)
        axes = tuple(range(x.ndim - 1))
        count = w.sum(axis=axes) + x.dtype.type(1e-7)
        mean = (w * x).sum(axis=axes) / count
        centered = x - mean
        var = (w * centered * centered).sum(axis=axes) / count
        inv_std = (1.0 / np.sqrt(var + self.epsilon)).astype(x.dtype)
        ctx.weights, ctx.count, ctx.centered, ctx.inv_std = w, count, centered, inv_std
        m = x.dtype.type(self.momentum)
        self.moving_mean.value[...] = self.moving_mean.value * m + mean * (1 - m)
        self.moving_variance.value[...] = self.moving_variance.value * m + var * (1 - m)
        y = centered * inv_std
        if gamma is not None:
            y = y * gamma
        return y + beta if beta is not None else y

    def _masked_train_backward(self, ctx, dy):
        """The gradient of _masked_train_forward: through x directly and through the masked
        mean and variance (whose derivatives are w / count and 2 w (x - mean) / count)."""
        axes = tuple(range(dy.ndim - 1))
        xhat = ctx.centered * ctx.inv_std
        dgamma, dbeta = (dy * xhat).sum(axis=axes), dy.sum(axis=axes)
        dxhat = dy * self.gamma.value if self.scale else dy
        w, count, centered, inv_std = ctx.weights, ctx.count, ctx.centered, ctx.inv_std
        dvar = (dxhat * centered).sum(axis=axes) * (-0.5 * inv_std ** 3)
        dmean = -inv_std * dxhat.sum(axis=axes) - 2 * dvar * (w * centered).sum(axis=axes) / count
        dx = dxhat * inv_std + w * (dmean / count) + w * centered * (2 * dvar / count)
        return dx.astype(dy.dtype, copy=False), dgamma, dbeta

    def _backward(self, ctx, grad, need_input_grad):
        dy = self._to_last(grad)
        if ctx.weights is not None:
            dx, dgamma, dbeta = self._masked_train_backward(ctx, dy)
        elif ctx.training:
            gamma = self.gamma.value if self.scale else None
            dx, dgamma, dbeta = kernels.batch_norm_backward(dy, ctx.x, gamma, ctx.mean, ctx.inv_std)
        else:
            # Inference mode: y = gamma * (x - moving_mean) * inv_std + beta is affine in x.
            inv_std = (1.0 / np.sqrt(ctx.moving_variance + self.epsilon)).astype(self.dtype)
            xhat = (ctx.x - ctx.moving_mean) * inv_std
            axes = tuple(range(dy.ndim - 1))
            dgamma = (dy * xhat).sum(axis=axes)
            dbeta = dy.sum(axis=axes)
            dx = dy * (inv_std * (self.gamma.value if self.scale else 1))
        if self.scale:
            add_grad(self.gamma, dgamma)
        if self.center:
            add_grad(self.beta, dbeta)
        return self._from_last(dx)

    def get_config(self):
        def ser(v, mod):
            return None if v is None else mod.serialize(mod.get(v))
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": ser(self.beta_initializer, initializers),
                "gamma_initializer": ser(self.gamma_initializer, initializers),
                "moving_mean_initializer": ser(self.moving_mean_initializer, initializers),
                "moving_variance_initializer": ser(self.moving_variance_initializer, initializers),
                "beta_regularizer": ser(self.beta_regularizer, regularizers),
                "gamma_regularizer": ser(self.gamma_regularizer, regularizers),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


# ----------------------------------------------------------------------------------------------
# LayerNormalization, GroupNormalization, UnitNormalization

def _serialize(value, module):
    return None if value is None else module.serialize(module.get(value))


def _axis_list(owner, value):
    """Keras's `axis` of the per-sample normalizations: an int or a list/tuple of ints (TypeError
    otherwise, as in Keras); returned as a list."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(_validation.is_int(a) for a in values):
        raise TypeError(f"{owner}: axis must be an int or a non-empty list/tuple of ints; received axis={value!r}")
    return [int(a) for a in values]


def _resolve_axes(who, axes, ndim):
    """The axes (each in [-ndim, ndim)) as sorted distinct non-negative ints, or ValueError."""
    bad = [a for a in axes if not -ndim <= a < ndim]
    if bad:
        raise ValueError(f"{who}: axis {bad[0]} is out of bounds for inputs of rank {ndim}; received axis={axes}")
    resolved = sorted(a % ndim for a in axes)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{who}: axis names an axis twice for inputs of rank {ndim}; received axis={axes}")
    return resolved


class _AxesToEnd:
    """Moves a set of axes of an array to its end (a transposed copy) and back: the kernels
    normalise over the trailing axes of a C-contiguous array. No copy when they already trail."""

    def __init__(self, ndim: int, axes: Sequence[int]) -> None:
        rest = [i for i in range(ndim) if i not in axes]
        self.perm = None if axes == list(range(ndim - len(axes), ndim)) else rest + list(axes)
        self.inverse = None if self.perm is None else list(np.argsort(self.perm))

    def to_end(self, a):
        return a if self.perm is None else np.ascontiguousarray(a.transpose(self.perm))

    def back(self, a):
        return a if self.perm is None else a.transpose(self.inverse)


class _Affine(Layer):
    """The per-feature scale (gamma) and offset (beta) that LayerNormalization and
    GroupNormalization share: their arguments, weights and config entries (Keras's names)."""

    def _affine_arguments(self, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                          gamma_regularizer, beta_constraint, gamma_constraint):
        self.epsilon = _validation.real("epsilon", epsilon, low=0.0, low_open=True)
        self.center = _validation.flag("center", center)
        self.scale = _validation.flag("scale", scale)
        self.beta_initializer = check_initializer("beta_initializer", beta_initializer, "zeros")
        self.gamma_initializer = check_initializer("gamma_initializer", gamma_initializer, "ones")
        self.beta_regularizer = check_regularizer("beta_regularizer", beta_regularizer)
        self.gamma_regularizer = check_regularizer("gamma_regularizer", gamma_regularizer)
        self.beta_constraint = check_constraint("beta_constraint", beta_constraint)
        self.gamma_constraint = check_constraint("gamma_constraint", gamma_constraint)

    def _affine_weights(self, shape, with_gamma, with_beta):
        self.gamma = (self.add_weight(shape, self.gamma_initializer, regularizer=self.gamma_regularizer, name="gamma",
                                      constraint=self.gamma_constraint) if with_gamma else None)
        self.beta = (self.add_weight(shape, self.beta_initializer, regularizer=self.beta_regularizer, name="beta",
                                     constraint=self.beta_constraint) if with_beta else None)

    def _affine_config(self):
        return {"epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": _serialize(self.beta_initializer, initializers),
                "gamma_initializer": _serialize(self.gamma_initializer, initializers),
                "beta_regularizer": _serialize(self.beta_regularizer, regularizers),
                "gamma_regularizer": _serialize(self.gamma_regularizer, regularizers),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


class LayerNormalization(_Affine):
    """Keras 3 LayerNormalization: each sample normalised over `axis` (an int or a list of axes),
    y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with the biased variance; gamma and beta
    have the sizes of the normalised axes. The normalised axes are moved to the end (a copy,
    unless they already trail) and flattened, so one fused kernel pass serves any axis set.

    rms_scaling=True is Keras's deprecated variant (it warns, as Keras does): no beta, and
    y = x / sqrt(var + epsilon) * gamma, still with the centred variance.

    Weights, in Keras order: gamma (if scale or rms_scaling), beta (if center and not rms_scaling).
    Constraints are not supported (None only).

    Args:
        axis: The axis (or axes) the layer operates along.
        epsilon: Small float added to the variance to avoid dividing by zero.
        center: Whether to add the learned offset `beta`.
        scale: Whether to multiply by the learned scale `gamma`.
        rms_scaling: If `True`, scale by the root mean square of the inputs without centering them (RMS
            normalization).
        beta_initializer: Initializer of `beta`.
        gamma_initializer: Initializer of `gamma`.
        beta_regularizer: Regularizer of `beta`, or `None`.
        gamma_regularizer: Regularizer of `gamma`, or `None`.
        beta_constraint: Constraint the optimizer applies to `beta` after each update, or `None`.
        gamma_constraint: Constraint the optimizer applies to `gamma` after each update, or `None`.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    _nonempty_input = True

    def __init__(self, axis: int | list[int] | tuple[int, ...] = -1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 beta_regularizer: Any = None, gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._axes = _axis_list(type(self).__name__, axis)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self._affine_arguments(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                               gamma_regularizer, beta_constraint, gamma_constraint)
        self.rms_scaling = _validation.flag("rms_scaling", rms_scaling)
        if self.rms_scaling:
            warnings.warn("You passed `rms_scaling=True`, which is deprecated in Keras 3: it scales the input by the "
                          "variance, not the root mean square.", UserWarning, stacklevel=2)

    def build(self, input_shape):
        ndim = len(input_shape)
        axes = _resolve_axes(self._who(), self._axes, ndim)
        unknown = [a for a in axes if input_shape[a] is None]
        if unknown:
            raise ValueError(f"{self._who()}: the normalised axes need known sizes; axis {unknown[0]} of input shape "
                             f"{tuple(input_shape)} is unknown")
        # Keras's weight shape: the sizes of the axes in the order of sorted(axis) as given
        shape = tuple(int(input_shape[a]) for a in sorted(self._axes))
        self._norm_axes = axes
        self._norm_size = int(np.prod([input_shape[a] for a in axes]))
        self._move = _AxesToEnd(ndim, axes)
        self._built_ndim = ndim
        self._input_axes = {a: int(input_shape[a]) for a in axes}
        self._affine_weights(shape, self.scale or self.rms_scaling, self.center and not self.rms_scaling)
        self.built = True

    def compute_output_shape(self, input_shape):
        _resolve_axes(self._who(), self._axes, len(input_shape))
        return tuple(input_shape)

    def _forward(self, ctx, inputs, training):
        x = self._move.to_end(inputs)
        ctx.shape = x.shape
        ctx.x = x.reshape(-1, self._norm_size)
        gamma = None if self.gamma is None else self.gamma.value.reshape(-1)
        beta = None if self.beta is None else self.beta.value.reshape(-1)
        y, ctx.mean, ctx.inv_std = kernels.layer_norm_forward(ctx.x, gamma, beta, self.epsilon, self.rms_scaling)
        return self._move.back(y.reshape(ctx.shape))

    def _backward(self, ctx, grad, need_input_grad):
        dy = self._move.to_end(grad).reshape(ctx.x.shape)
        gamma = None if self.gamma is None else self.gamma.value.reshape(-1)
        dx, dgamma, dbeta = kernels.layer_norm_backward(dy, ctx.x, gamma, ctx.mean, ctx.inv_std, self.rms_scaling)
        if self.gamma is not None:
            add_grad(self.gamma, dgamma.reshape(self.gamma.shape))
        if self.beta is not None:
            add_grad(self.beta, dbeta.reshape(self.beta.shape))
        return self._move.back(dx.reshape(ctx.shape)) if need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, **self._affine_config(), "rms_scaling": self.rms_scaling}


class GroupNormalization(_Affine):
    """Keras 3 GroupNormalization: the channels of `axis` split into `groups` groups, each sample's
    group normalised over all its other axes (spatial positions and the group's channels), then a
    per-channel gamma and beta. groups=-1 is instance normalization (one channel per group).
    The channel axis is moved last (a copy unless it is last) and one kernel pass normalises every
    (sample, group) at once.

    Weights, in Keras order: gamma (if scale), beta (if center), each (channels,).
    Constraints are not supported (None only).

    Args:
        groups: Positive int dividing the input channels and `filters`: each group of channels is convolved
            separately.
        axis: The axis (or axes) the layer operates along.
        epsilon: Small float added to the variance to avoid dividing by zero.
        center: Whether to add the learned offset `beta`.
        scale: Whether to multiply by the learned scale `gamma`.
        beta_initializer: Initializer of `beta`.
        gamma_initializer: Initializer of `gamma`.
        beta_regularizer: Regularizer of `beta`, or `None`.
        gamma_regularizer: Regularizer of `gamma`, or `None`.
        beta_constraint: Constraint the optimizer applies to `beta` after each update, or `None`.
        gamma_constraint: Constraint the optimizer applies to `gamma` after each update, or `None`.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    _nonempty_input = True
    _input_min_ndim = 2

    def __init__(self, groups: int = 32, axis: int | list[int] | tuple[int, ...] = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 beta_regularizer: Any = None, gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (_validation.is_int(groups) and groups == -1):
            try:
                groups = _validation.positive_int("groups", groups)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"groups must be a positive integer below 2**31 (or -1 for instance normalization); "
                                 f"received groups={groups!r}") from exc
        self.groups = int(groups)
        if not _validation.is_int(axis):
            raise TypeError(f"axis must be an int (the channel axis); received axis={axis!r}")
        self.axis = int(axis)
        self._affine_arguments(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                               gamma_regularizer, beta_constraint, gamma_constraint)

    def build(self, input_shape):
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(f"{self._who()}: inputs must have at least 2 dimensions (batch axis included); "
                             f"received shape {tuple(input_shape)}")
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"{self._who()}: axis={self.axis} is not a channel axis of inputs with shape "
                             f"{tuple(input_shape)} (axis 0 is the batch axis)")
        axis = self.axis % ndim
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(f"{self._who()}: axis {self.axis} of the inputs should have a defined size; received "
                             f"input shape {tuple(input_shape)}")
        groups = dim if self.groups == -1 else self.groups
        if dim < groups:
            raise ValueError(f"{self._who()}: groups ({groups}) cannot be more than the number of channels ({dim})")
        if dim % groups:
            raise ValueError(f"{self._who()}: the number of channels ({dim}) must be a multiple of groups ({groups})")
        self._groups = groups
        self._move = _AxesToEnd(ndim, [axis])
        self._built_ndim = ndim
        self._input_axes = {axis: int(dim)}
        self._affine_weights((dim,), self.scale, self.center)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _forward(self, ctx, inputs, training):
        ctx.x = self._move.to_end(inputs)
        y, ctx.mean, ctx.inv_std = kernels.group_norm_forward(
            ctx.x, self._groups, None if self.gamma is None else self.gamma.value,
            None if self.beta is None else self.beta.value, self.epsilon)
        return self._move.back(y)

    def _backward(self, ctx, grad, need_input_grad):
        dy = self._move.to_end(grad)
        dx, dgamma, dbeta = kernels.group_norm_backward(dy, ctx.x, self._groups,
                                                        None if self.gamma is None else self.gamma.value,
                                                        ctx.mean, ctx.inv_std)
        if self.gamma is not None:
            add_grad(self.gamma, dgamma)
        if self.beta is not None:
            add_grad(self.beta, dbeta)
        return self._move.back(dx) if need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, **self._affine_config()}


class UnitNormalization(Layer):
    """Keras 3 UnitNormalization: each sample scaled to unit L2 norm over `axis` (an int or a list
    of axes), y = x * min(1 / sqrt(sum(x^2)), 1e12), Keras's ops.normalize with epsilon 1e-12.
    No weights. A NumPy pass (a reduction and a scaling: no kernel of its own).

    Args:
        axis: The axis (or axes) the layer operates along.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    EPSILON = 1e-12

    def __init__(self, axis: int | list[int] | tuple[int, ...] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._axes = _axis_list(type(self).__name__, axis)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)

    def build(self, input_shape):
        self._norm_axes = tuple(_resolve_axes(self._who(), self._axes, len(input_shape)))
        self.built = True

    def _check_input(self, x):
        super()._check_input(x)
        _resolve_axes(self._who(), self._axes, x.ndim)

    def compute_output_shape(self, input_shape):
        _resolve_axes(self._who(), self._axes, len(input_shape))
        return tuple(input_shape)

    def _forward(self, ctx, inputs, training):
        axes = tuple(_resolve_axes(self._who(), self._axes, inputs.ndim))
        total = np.square(inputs).sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            inv = 1.0 / np.sqrt(total)
        ctx.clamped = ~(inv < 1.0 / self.EPSILON)          # the floor 1e12 applies (NaN sums stay NaN)
        inv = np.where(ctx.clamped & ~np.isnan(inv), inputs.dtype.type(1.0 / self.EPSILON), inv)
        ctx.axes, ctx.inv = axes, inv.astype(inputs.dtype, copy=False)
        ctx.y = inputs * ctx.inv
        return ctx.y

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        # unclamped: d(x / |x|) = (g - y <g, y>) / |x|; clamped: a constant scale
        dot = (grad * ctx.y).sum(axis=ctx.axes, keepdims=True)
        return np.where(ctx.clamped, grad * ctx.inv, (grad - ctx.y * dot) * ctx.inv)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(Layer):
    """Keras 3 RMSNormalization (Zhang & Sennrich 2019): each sample divided by the root mean
    square of its values over `axis` (an int or a list of axes), y = x / sqrt(mean(x^2) + epsilon)
    * scale, without centring. A NumPy forward and backward in the layer (two reductions: no
    kernel of its own).

    Weight, as Keras's: "scale" (initialised to ones) with the sizes of the normalised axes in the
    order of sorted(axis) as given. Keras's PyTorch backend normalises the trailing dimensions
    (`F.rms_norm`) whatever the axes; cynet normalises the axes named (the same for trailing axes).

    Args:
        axis: The axis (or axes) the layer operates along.
        epsilon: Small float added to the mean square to avoid dividing by zero.
    """

    supports_masking = True   # the mask passes through (a per-sample operation)

    _nonempty_input = True

    def __init__(self, axis: int | list[int] | tuple[int, ...] = -1, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._axes = _axis_list(type(self).__name__, axis)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = _validation.real("epsilon", epsilon, low=0.0, low_open=True)

    def build(self, input_shape):
        ndim = len(input_shape)
        self._norm_axes = tuple(_resolve_axes(self._who(), self._axes, ndim))
        unknown = [a for a in self._norm_axes if input_shape[a] is None]
        if unknown:
            raise ValueError(f"{self._who()}: the normalised axes need known sizes; axis {unknown[0]} of input shape "
                             f"{tuple(input_shape)} is unknown")
        given = [a % ndim for a in sorted(self._axes)]           # the weight's axis order (Keras's)
        self._scale_perm = tuple(int(i) for i in np.argsort(given))   # the weight's axes in ascending order
        self._norm_size = int(np.prod([input_shape[a] for a in self._norm_axes]))
        self._move = _AxesToEnd(ndim, list(self._norm_axes))
        self._input_axes = {a: int(input_shape[a]) for a in self._norm_axes}
        self._built_ndim = ndim
        self.scale = self.add_weight(tuple(int(input_shape[a]) for a in given), "ones", name="scale")
        self.built = True

    def compute_output_shape(self, input_shape):
        _resolve_axes(self._who(), self._axes, len(input_shape))
        return tuple(input_shape)

    def _scale_row(self):
        """The weight as one row over the flattened normalised axes (in ascending axis order)."""
        return self.scale.value.transpose(self._scale_perm).reshape(-1)

    def _forward(self, ctx, inputs, training):
        # the normalised axes moved last (no copy when they trail) and flattened: rows of n values
        x = self._move.to_end(inputs)
        ctx.shape = x.shape
        x = x.reshape(-1, self._norm_size)
        mean_square = np.einsum("ij,ij->i", x, x) / x.dtype.type(self._norm_size)
        ctx.inv_rms = (1.0 / np.sqrt(mean_square + x.dtype.type(self.epsilon)))[:, None]
        ctx.xhat = x * ctx.inv_rms
        return self._move.back(np.multiply(ctx.xhat, self._scale_row()).reshape(ctx.shape))

    def _backward(self, ctx, grad, need_input_grad):
        dy = self._move.to_end(grad).reshape(ctx.xhat.shape)
        dscale = np.einsum("ij,ij->j", dy, ctx.xhat)
        perm_shape = [self.scale.shape[i] for i in self._scale_perm]
        add_grad(self.scale, dscale.reshape(perm_shape).transpose(np.argsort(self._scale_perm)))
        if not need_input_grad:
            return None
        # d(x r)/dx with r = (mean(x^2) + eps)^-1/2: r g - x r^3 mean(g x) = r (g - xhat mean(g xhat))
        g = dy * self._scale_row()
        mean_gx = (np.einsum("ij,ij->i", g, ctx.xhat) / g.dtype.type(self._norm_size))[:, None]
        g -= ctx.xhat * mean_gx      # (in place: one temporary less per pass)
        g *= ctx.inv_rms
        return self._move.back(g.reshape(ctx.shape))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
