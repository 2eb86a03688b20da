"""BatchNormalization."""
import numpy as np

from .. import _validation, initializers, kernels, regularizers
from .base import Layer, add_grad, check_initializer, check_regularizer


class BatchNormalization(Layer):
    """Keras 3 BatchNormalization: batch statistics in training (moving statistics updated as
    `moving = moving * momentum + batch * (1 - momentum)`), moving statistics at inference.
    A non-trainable layer always runs in inference mode, as in Keras 3.

    Weights, in Keras order: gamma (if scale), beta (if center), moving_mean, moving_variance.
    """

    supports_masking = True   # the mask passes through (Keras 3)

    _nonempty_input = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
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
        self.gamma = (self.add_weight((c,), self.gamma_initializer, regularizer=self.gamma_regularizer, name="gamma")
                      if self.scale else None)
        self.beta = (self.add_weight((c,), self.beta_initializer, regularizer=self.beta_regularizer, name="beta")
                     if self.center else None)
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
                "gamma_regularizer": ser(self.gamma_regularizer, regularizers)}
