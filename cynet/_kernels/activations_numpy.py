"""Activation and loss kernels in NumPy: the reference twin of activations.pyx.

Same names, signatures and results as the compiled module (within 1e-10 in float64, 1e-5 in
float32). Vectorised, numerically stable NumPy: softmax subtracts the row maximum, sigmoid and the
binary cross-entropy use exp(-|x|), ELU uses expm1 of min(x, 0), so no input of any finite
magnitude overflows or warns. As in the kernel, the row sums of the softmax family (sum of exp,
sum of targets, sum of t * (z - max), sum of dy * y) are accumulated in float64 for both dtypes,
each product formed in float64, and the per-row scalars (1 / sum, the loss) are computed in
float64 and rounded once: a confident prediction's loss log(1 + 1e-9) stays 1e-9 rather than
log(float32(1 + 1e-9)) = 0, and sum(dy * y) keeps its digits when dy mixes 1e20 and 1.

Layouts. The softmax family works on C-contiguous 2-D (N, K) arrays (K classes along the last
axis); the elementwise kernels on 1-D arrays (the public layer flattens and reshapes). Every
kernel returns new arrays and writes none of its arguments.
"""
import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_array(name, a, ndim):
    if not isinstance(a, np.ndarray) or a.dtype not in _FLOATS:
        raise TypeError(f"{name} must be a float32 or float64 ndarray; received {type(a).__name__} "
                        f"of dtype {getattr(a, 'dtype', None)}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional; received shape {a.shape}")
    return a


def _same_dtype(name, a, ref_name, ref):
    if a.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}); received {a.dtype}")


def _check_rows(name, a):
    if a.shape[1] < 1:
        raise ValueError(f"{name} must have at least one class along its last axis (K >= 1); received K={a.shape[1]}")


def _check_same(name, a, other_name, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of {other_name} {tuple(shape)}; received shape {a.shape}")


def _rows(name, a, ref_name=None, ref=None):
    _float_array(name, a, 2)
    if ref is not None:
        _same_dtype(name, a, ref_name, ref)
        _check_same(name, a, ref_name, ref.shape)
    return a


def _flat(name, a, ref_name=None, ref=None):
    _float_array(name, a, 1)
    if ref is not None:
        _same_dtype(name, a, ref_name, ref)
        _check_same(name, a, ref_name, ref.shape)
    return a


# ---------------------------------------------------------------------------------------------
# Softmax family.

def _exp_shifted(z):
    """(exp(z - max), z - max, float64 sum of exp) per row, keepdims."""
    zm = z - z.max(axis=1, keepdims=True)
    e = np.exp(zm)
    return e, zm, _row_sum(e)[:, None]


def _row_sum(a):
    """sum(a) per row, (N,) float64, accumulated in float64 as the kernel's (einsum casts in its
    buffers, faster here than a sum with dtype=float64)."""
    return np.einsum("ij->i", a, dtype=np.float64)


def _row_dot(a, b):
    """sum(a * b) per row, (N,) float64: products and sum in float64, as the kernel's."""
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def softmax_cross_entropy_sparse(logits, labels):
    """Fused softmax + cross-entropy with integer class labels.

    logits: (N, K) float32|float64, K >= 1 (IN)
    labels: (N,) int64, each in [0, K) (IN)
    Returns (loss, dlogits): loss (N,) = logsumexp(z) - z[label]; dlogits (N, K) =
    softmax(z) - onehot(label), the gradient of the per-sample loss (not divided by N).
    """
    _rows("logits", logits)
    _check_rows("logits", logits)
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
        raise TypeError(f"labels must be an int64 ndarray; received dtype {getattr(labels, 'dtype', None)}")
    n, k = logits.shape
    _check_same("labels", labels, "logits.shape[:-1]", (n,))
    if n > 0:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            raise ValueError(f"labels must be class indices in [0, {k}) for K={k} classes; "
                             f"received values in [{lo}, {hi}]")
    if n == 0:
        return np.empty(0, logits.dtype), np.empty((0, k), logits.dtype)
    # 1. m = max(z); 2. e = exp(z - m), s = sum(e); 3. g = e * (1 / s) - onehot;
    # 4. loss = log(s) - (z[label] - m), in float64
    g, zm, s = _exp_shifted(logits)
    rows = np.arange(n)
    loss = (np.log(s[:, 0]) - zm[rows, labels]).astype(logits.dtype)
    g *= (1.0 / s).astype(logits.dtype)
    g[rows, labels] -= 1
    return loss, g


def softmax_cross_entropy_dense(logits, targets):
    """Fused softmax + cross-entropy with dense targets (one-hot or probabilities).

    logits: (N, K) float32|float64, K >= 1 (IN)
    targets: (N, K) same dtype (IN)
    Returns (loss, dlogits): loss (N,) = -sum_j t_j log_softmax(z)_j; dlogits (N, K) =
    softmax(z) * sum_j t_j - t, the gradient of the per-sample loss (not divided by N).
    """
    _rows("logits", logits)
    _check_rows("logits", logits)
    _rows("targets", targets, "logits", logits)
    if logits.shape[0] == 0:
        return np.empty(0, logits.dtype), np.empty(logits.shape, logits.dtype)
    # 1. m = max(z); 2. e = exp(z - m), s = sum(e), T = sum(t), tz = sum(t * (z - m));
    # 3. g = e * (T / s) - t; 4. loss = T * log(s) - tz; sums and per-row scalars in float64
    g, zm, s = _exp_shifted(logits)
    tsum = _row_sum(targets)[:, None]
    tz = _row_dot(targets, zm)
    loss = (tsum[:, 0] * np.log(s[:, 0]) - tz).astype(logits.dtype)
    g *= (tsum / s).astype(logits.dtype)
    g -= targets
    return loss, g


def softmax_forward(x):
    """Softmax along the last axis.

    x: (N, K) float32|float64, K >= 1 (IN)
    Returns y: (N, K), y = exp(x - max) / sum(exp(x - max)) per row.
    """
    _rows("x", x)
    _check_rows("x", x)
    if x.shape[0] == 0:
        return np.empty(x.shape, x.dtype)
    e, _, s = _exp_shifted(x)
    e *= (1.0 / s).astype(x.dtype)
    return e


def softmax_backward(dy, y):
    """Gradient of softmax along the last axis.

    dy: (N, K) float32|float64, upstream gradient (IN)
    y: (N, K) same dtype, the softmax output (IN)
    Returns dx: (N, K), dx = y * (dy - sum(dy * y, axis=-1)).
    """
    _rows("y", y)
    _check_rows("y", y)
    _rows("dy", dy, "y", y)
    s = _row_dot(dy, y).astype(y.dtype)[:, None]
    dx = dy - s
    dx *= y
    return dx


# ---------------------------------------------------------------------------------------------
# Sigmoid + binary cross-entropy.

def _sigmoid_from(x, e):
    """sigmoid(x) given e = exp(-|x|): 1/(1+e) where x >= 0, e/(1+e) where x < 0."""
    r = e + 1
    np.reciprocal(r, out=r)
    np.multiply(r, e, out=r, where=x < 0)
    return r


def _exp_neg_abs(x):
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    return e


def sigmoid_cross_entropy(logits, labels):
    """Fused sigmoid + binary cross-entropy, elementwise.

    logits: (n,) float32|float64 (IN)
    labels: (n,) same dtype, targets in [0, 1] (IN)
    Returns (loss, dlogits), each (n,): loss = max(z, 0) - z*y + log1p(exp(-|z|)),
    dlogits = sigmoid(z) - y (computed as (1 - y) - (1 - sigmoid(z)) for z >= 0).
    """
    _flat("logits", logits)
    _flat("labels", labels, "logits", logits)
    # e = exp(-|z|), r = 1 / (1 + e); loss = max(z, 0) - z*y + log1p(e);
    # dlogits = sigmoid(z) - y = e*r - y for z < 0, (1 - y) - e*r for z >= 0 (no cancellation at y = 1)
    e = _exp_neg_abs(logits)
    loss = np.maximum(logits, 0)
    loss -= logits * labels
    loss += np.log1p(e)
    er = e + 1
    np.divide(e, er, out=er)
    g = 1 - labels
    g -= er
    np.subtract(er, labels, out=g, where=logits < 0)
    return loss, g


# ---------------------------------------------------------------------------------------------
# Elementwise activations. x, dy, y: (n,) float32|float64, one dtype (IN); each returns a new (n,).

def relu_forward(x):
    """y = max(x, 0) (NaN propagates)."""
    _flat("x", x)
    return np.maximum(x, 0)


def relu_backward(dy, y):
    """dx = dy where y > 0, else 0."""
    _flat("y", y)
    _flat("dy", dy, "y", y)
    return np.where(y > 0, dy, 0).astype(y.dtype, copy=False)


def leaky_relu_forward(x, negative_slope=0.2):
    """y = x where x > 0, else negative_slope * x."""
    _flat("x", x)
    s = x.dtype.type(negative_slope)
    return np.where(x > 0, x, x * s)


def leaky_relu_backward(dy, x, negative_slope=0.2):
    """dx = dy where x > 0, else negative_slope * dy."""
    _flat("x", x)
    _flat("dy", dy, "x", x)
    s = x.dtype.type(negative_slope)
    return np.where(x > 0, dy, dy * s)


def elu_forward(x, alpha=1.0):
    """y = x where x > 0, else alpha * expm1(x)."""
    _flat("x", x)
    a = x.dtype.type(alpha)
    y = np.minimum(x, 0)
    np.expm1(y, out=y)
    y *= a
    np.copyto(y, x, where=x > 0)
    return y


def elu_backward(dy, x, y, alpha=1.0):
    """dx = dy where x > 0, else dy * (y + alpha) (= dy * alpha * exp(x)); y = elu_forward(x, alpha)."""
    _flat("x", x)
    _flat("dy", dy, "x", x)
    _flat("y", y, "x", x)
    a = x.dtype.type(alpha)
    dx = y + a
    dx *= dy
    np.copyto(dx, dy, where=x > 0)
    return dx


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed from exp(-|x|)."""
    _flat("x", x)
    return _sigmoid_from(x, _exp_neg_abs(x))


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y); y = sigmoid(x)."""
    _flat("y", y)
    _flat("dy", dy, "y", y)
    dx = 1 - y
    dx *= y
    dx *= dy
    return dx


def tanh_forward(x):
    """y = tanh(x)."""
    _flat("x", x)
    return np.tanh(x)


def tanh_backward(dy, y):
    """dx = dy * (1 - y**2); y = tanh(x)."""
    _flat("y", y)
    _flat("dy", dy, "y", y)
    dx = y * y
    np.subtract(1, dx, out=dx)
    dx *= dy
    return dx
