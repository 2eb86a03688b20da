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

    def _forward(self, ctx, inputs, training, mask=None):
        if mask is not None and training and self.trainable:
            raise NotImplementedError(f"{self._who()}: training on masked inputs (Keras's masked batch moments) is "
                                      "not supported yet; the mask passes through at inference")
        x = self._to_last(inputs)
        gamma = self.gamma.value if self.scale else None
        beta = self.beta.value if self.center else None
        ctx.training = training and self.trainable
        ctx.x = x
        if ctx.training:
            y, ctx.mean, ctx.inv_std = kernels.batch_norm_train_forward(
                x, gamma, beta, self.moving_mean.value, self.moving_variance.value, momentum=self.momentum,
                epsilon=self.epsilon)
        else:
            y = kernels.batch_norm_inference_forward(x, gamma, beta, self.moving_mean.value,
                                                     self.moving_variance.value, epsilon=self.epsilon)
            ctx.moving_mean = self.moving_mean.value.copy()   # the statistics this call used
            ctx.moving_variance = self.moving_variance.value.copy()
        return self._from_last(y)

    def _backward(self, ctx, grad, need_input_grad):
        dy = self._to_last(grad)
        if ctx.training:
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
