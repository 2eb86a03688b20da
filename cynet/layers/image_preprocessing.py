"""Image preprocessing and augmentation layers (Keras 3, NumPy inside the model): Resizing,
RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast, RandomBrightness,
RandomCrop.

All take a batch of images (4-D; `data_format` "channels_last" (default) or "channels_first");
Keras also takes one unbatched 3-D image, cynet layers always have a batch axis. Values are
computed in the layer's dtype (uint8 images become float32, as Rescaling's do; Keras's Resizing
returns uint8 for uint8 images).

Resizing applies always and follows Keras's PyTorch backend (`torch.nn.functional.interpolate`):
"bilinear" with half-pixel centres (align_corners=False) and no antialiasing (Keras's default
antialias=False; antialias=True, which blurs when downsampling, raises NotImplementedError),
"nearest" as torch's "nearest-exact" (source index floor((i + 0.5) * in / out)).

The Random* layers change images only when called with training=True (fit) and are the identity
at inference (predict, evaluate). Each draws its random transformation per image from
`cynet.utils.rng.make_rng(seed)`: a layer given `seed` owns a generator seeded with it (the same
seed gives the same sequence of augmentations run to run), else the global generator
(`cynet.utils.set_random_seed`) is used. Keras's random numbers come from its own SeedGenerator,
so the same seed does not give Keras's draws: the distributions and transformations are Keras's.

The geometric layers (rotation, zoom, translation) map each output pixel to a source point with
Keras's affine matrices (`_compute_affine_matrix`, `_get_zoom_matrix`, `_get_translation_matrix`)
and read it with one gather (bilinear: four taps; nearest: one, rounded half to even), with
Keras's fill modes for points outside the image: "reflect" (d c b a | a b c d | d c b a), "wrap",
"nearest" (the edge pixel) and "constant" (`fill_value`).

Gradients: every layer here is linear (affine) in its input for a fixed draw, so the input
gradient is exact: flips flip the gradient back, the geometric layers scatter-add it through the
transpose of their gather (`np.bincount`), Resizing applies the transposed interpolation matrices,
contrast and brightness pass it where the output was not clipped to `value_range` (zero where it
was). At inference the Random* layers pass the gradient unchanged.
"""
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation as _checks
from ..utils.rng import make_rng
from .base import Layer

_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


def _choice(name, value, options):
    """One of `options` (strings), or ValueError naming the argument and the options."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {list(options)}; received {name}={value!r}")
    return value


def _seed(seed):
    """A layer's seed: None or a non-negative int (make_rng refuses anything else, naming seed)."""
    make_rng(seed)
    return None if seed is None else int(seed)


def _number(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; received {name}={value!r}")
    return _checks.real(name, value)


def _factor_range(name, value, low, high, low_open=False):
    """Keras's factor argument: a number f (the range [-|f|, |f|], clipped at `low`) or a pair
    (lower, upper), each within [low, high] (low excluded when low_open); returned sorted."""
    def bound(v):
        v = _number(name, v)
        if v > high or v < low or (low_open and v == low):
            raise ValueError(f"{name} must be a number or a pair of numbers in {'(' if low_open else '['}{low}, "
                             f"{high}]; received {name}={value!r}")
        return v
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a pair (lower, upper); received {name}={value!r}")
        lower, upper = sorted(bound(v) for v in value)
        return lower, upper
    f = abs(bound(value))
    return max(-f, low), f


def _fill_value(value):
    return _number("fill_value", value)


class _ImageLayer(Layer):
    """A layer on 4-D image batches with a data_format."""

    _input_ndim = 4

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = _checks.data_format(data_format)

    def _hw_axes(self):
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def _check_input(self, x):
        super()._check_input(x)
        self.compute_output_shape(x.shape)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{self._who()}: inputs must be 4-dimensional (a batch of images); received shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)


# ----------------------------------------------------------------------------- Resizing
def _bilinear_matrix(n_in, n_out, dtype):
    """(n_out, n_in): torch's bilinear interpolation along one axis, align_corners=False."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - w)
    np.add.at(m, (rows, hi), w)
    return m.astype(dtype)


def _nearest_matrix(n_in, n_out, dtype):
    """(n_out, n_in): torch's "nearest-exact" along one axis (the source pixel whose centre is nearest)."""
    src = np.minimum(np.floor((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)
    m = np.zeros((n_out, n_in), dtype=dtype)
    m[np.arange(n_out), src] = 1
    return m


class Resizing(_ImageLayer):
    """Resize a batch of images to `height` x `width` (Keras 3; see the module docstring for the
    interpolation rules).

    Args:
        height: The output size (positive ints).
        width: The output size (positive ints).
        interpolation: "bilinear" (default) or "nearest" (Keras's other methods, bicubic, lanczos,
            area, are not implemented: NotImplementedError).
        crop_to_aspect_ratio: first crop the largest centred window of the target aspect ratio.
        pad_to_aspect_ratio: first pad (with `fill_value`, equally on both sides) to the target
            aspect ratio. At most one of the two.
        fill_mode: "constant" (the only mode Keras's PyTorch backend resizes with).
        fill_value: the padding value.
        antialias: False (True is not implemented).
        data_format: "channels_last" or "channels_first".
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", crop_to_aspect_ratio: bool = False,
                 pad_to_aspect_ratio: bool = False, fill_mode: str = "constant", fill_value: float = 0.0,
                 antialias: bool = False, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.height = _checks.positive_int("height", height)
        self.width = _checks.positive_int("width", width)
        if isinstance(interpolation, str) and interpolation in ("bicubic", "lanczos3", "lanczos5", "area"):
            raise NotImplementedError(f"Resizing(interpolation={interpolation!r}) is not implemented in cynet; use "
                                      f"'bilinear' or 'nearest'")
        self.interpolation = _choice("interpolation", interpolation, _INTERPOLATIONS)
        self.crop_to_aspect_ratio = _checks.flag("crop_to_aspect_ratio", crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = _checks.flag("pad_to_aspect_ratio", pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("Only one of pad_to_aspect_ratio and crop_to_aspect_ratio can be True; received "
                             "crop_to_aspect_ratio=True and pad_to_aspect_ratio=True")
        self.fill_mode = _choice("fill_mode", fill_mode, ("constant",))
        self.fill_value = _fill_value(fill_value)
        if _checks.flag("antialias", antialias):
            raise NotImplementedError("Resizing(antialias=True) is not implemented in cynet (it differs from "
                                      "antialias=False when downsampling); use antialias=False")
        self.antialias = False

    def compute_output_shape(self, input_shape):
        shape = list(super().compute_output_shape(input_shape))
        h, w = self._hw_axes()
        for axis in (h, w):
            if shape[axis] == 0:
                raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} hold empty images (axis "
                                 f"{axis} has size 0): there is nothing to resize")
        shape[h], shape[w] = self.height, self.width
        return tuple(shape)

    def _plan(self, h, w):
        """(crop or pad box, padded/cropped size): Keras's crop_to_aspect_ratio / pad_to_aspect_ratio."""
        th, tw = self.height, self.width
        if self.crop_to_aspect_ratio:
            ch = max(min(h, int(float(w * th) / tw)), 1)
            cw = max(min(w, int(float(h * tw) / th)), 1)
            hs, ws = int(float(h - ch) / 2), int(float(w - cw) / 2)
            return ("crop", hs, ws, ch, cw)
        if self.pad_to_aspect_ratio:
            ph = max(h, int(float(w * th) / tw))
            pw = max(w, int(float(h * tw) / th))
            return ("pad", int(float(ph - h) / 2), int(float(pw - w) / 2), h, w)
        return ("none", 0, 0, h, w)

    def _forward(self, ctx, inputs, training):
        x = inputs if self.data_format == "channels_last" else inputs.transpose(0, 2, 3, 1)
        kind, a, b, h, w = self._plan(x.shape[1], x.shape[2])
        if kind == "crop":
            x = x[:, a:a + h, b:b + w]
        elif kind == "pad":
            x = np.pad(x, ((0, 0), (a, a), (b, b), (0, 0)), constant_values=self.fill_value)
        make = _bilinear_matrix if self.interpolation == "bilinear" else _nearest_matrix
        mh = make(x.shape[1], self.height, inputs.dtype)
        mw = make(x.shape[2], self.width, inputs.dtype)
        y = np.einsum("oh,nhwc->nowc", mh, x, optimize=True)
        y = np.einsum("pw,nowc->nopc", mw, y, optimize=True)
        ctx.plan, ctx.mats, ctx.shape = (kind, a, b, h, w), (mh, mw), inputs.shape
        return np.ascontiguousarray(y if self.data_format == "channels_last" else y.transpose(0, 3, 1, 2))

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        g = grad if self.data_format == "channels_last" else grad.transpose(0, 2, 3, 1)
        mh, mw = ctx.mats
        g = np.einsum("oh,nopc->nhpc", mh, g, optimize=True)
        g = np.einsum("pw,nhpc->nhwc", mw, g, optimize=True)
        kind, a, b, h, w = ctx.plan
        shape = ctx.shape if self.data_format == "channels_last" else tuple(ctx.shape[i] for i in (0, 2, 3, 1))
        if kind == "crop":
            full = np.zeros(shape, dtype=g.dtype)
            full[:, a:a + h, b:b + w] = g
            g = full
        elif kind == "pad":
            g = g[:, a:a + h, b:b + w]
        return np.ascontiguousarray(g if self.data_format == "channels_last" else g.transpose(0, 3, 1, 2))

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias, "data_format": self.data_format}


# ----------------------------------------------------------------------------- random layers
class _RandomImageLayer(_ImageLayer):
    """An augmentation: a random transformation per image in training, the identity otherwise."""

    def __init__(self, seed: int | None = None, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.seed = _seed(seed)
        self._rng = make_rng(seed) if seed is not None else None

    def _generator(self):
        return self._rng if self._rng is not None else make_rng(None)

    def _forward(self, ctx, inputs, training):
        ctx.active = bool(training) and inputs.shape[0] > 0 and inputs.size > 0
        if not ctx.active:
            return inputs
        x = inputs if self.data_format == "channels_last" else inputs.transpose(0, 2, 3, 1)
        y = self._augment(ctx, x, self._generator())
        return np.ascontiguousarray(y if self.data_format == "channels_last" else y.transpose(0, 3, 1, 2))

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        if not ctx.active:
            return grad
        g = grad if self.data_format == "channels_last" else grad.transpose(0, 2, 3, 1)
        dx = self._augment_grad(ctx, g)
        return np.ascontiguousarray(dx if self.data_format == "channels_last" else dx.transpose(0, 3, 1, 2))


_HORIZONTAL, _VERTICAL, _BOTH = "horizontal", "vertical", "horizontal_and_vertical"


class RandomFlip(_RandomImageLayer):
    """Flip each image with probability 1/2 in training (Keras 3): left-right ("horizontal"),
    upside down ("vertical"), or, with "horizontal_and_vertical" (default), both at once with
    probability 1/2 (one draw per image, as Keras does).

    Args:
        mode: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (default).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def __init__(self, mode: str = _BOTH, seed: int | None = None, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _choice("mode", mode, (_HORIZONTAL, _VERTICAL, _BOTH))

    def _augment(self, ctx, x, rng):
        flips = rng.uniform(size=x.shape[0]) <= 0.5
        ctx.flips = flips
        return self._flip(x, flips)

    def _flip(self, x, flips):
        y = x.copy()
        sel = y[flips]
        if self.mode in (_HORIZONTAL, _BOTH):
            sel = sel[:, :, ::-1]
        if self.mode in (_VERTICAL, _BOTH):
            sel = sel[:, ::-1]
        y[flips] = sel
        return y

    def _augment_grad(self, ctx, g):
        return self._flip(g, ctx.flips)   # a flip is its own inverse and its own transpose

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "mode": self.mode, "data_format": self.data_format}


# --- the affine gather ---------------------------------------------------------------------
def _fix_index(index, size, fill_mode):
    """Keras's index fixers: where an out-of-image index reads from (intp arrays)."""
    if fill_mode in ("constant", "nearest"):
        return np.clip(index, 0, size - 1)
    outside = np.flatnonzero((index < 0) | (index >= size))
    if not outside.size:
        return index
    period = size if fill_mode == "wrap" else 2 * size
    m = np.mod(index.reshape(-1)[outside], period)
    if fill_mode == "reflect":   # d c b a | a b c d | d c b a: Keras's reflect index fixer
        m = np.where(m >= size, period - 1 - m, m)
    fixed = index.copy()
    fixed.reshape(-1)[outside] = m
    return fixed


def _taps(coordinate, size, interpolation, fill_mode, dtype):
    """[(index, weight or None, valid or None)] along one axis for the source coordinates
    (float64 arrays): the fixed index, its interpolation weight in `dtype`, and (constant fill)
    whether the unfixed index lay inside the image."""
    if interpolation == "nearest":
        nodes = [(np.round(coordinate).astype(np.intp), None)]
    else:
        lower = np.floor(coordinate)
        upper_w = (coordinate - lower).astype(dtype)
        lower = lower.astype(np.intp)
        nodes = [(lower, 1 - upper_w), (lower + 1, upper_w)]
    out = []
    for index, weight in nodes:
        valid = ((index >= 0) & (index < size)) if fill_mode == "constant" else None
        out.append((_fix_index(index, size, fill_mode), weight, valid))
    return out


class _AffineLayer(_RandomImageLayer):
    """A random affine map per image (rotation, zoom, translation), applied with one gather."""

    def __init__(self, fill_mode: str = "reflect", interpolation: str = "bilinear", seed: int | None = None,
                 fill_value: float = 0.0, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.fill_mode = _choice("fill_mode", fill_mode, _FILL_MODES)
        self.interpolation = _choice("interpolation", interpolation, _INTERPOLATIONS)
        self.fill_value = _fill_value(fill_value)

    def _matrices(self, rng, n, h, w):
        """(n, 6) float64: Keras's [a0, a1, a2, b0, b1, b2] per image (source x = a0 x + a1 y + a2,
        source y = b0 x + b1 y + b2 for output pixel (y, x))."""
        raise NotImplementedError

    def _augment(self, ctx, x, rng):
        n, h, w, c = x.shape
        m = self._matrices(rng, n, h, w)
        yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        src_x = m[:, 0, None, None] * xx + m[:, 1, None, None] * yy + m[:, 2, None, None]
        src_y = m[:, 3, None, None] * xx + m[:, 4, None, None] * yy + m[:, 5, None, None]
        base = (np.arange(n, dtype=np.intp) * (h * w))[:, None, None]
        flat = x.reshape(n * h * w, c)
        out = np.zeros((n * h * w, c), dtype=x.dtype)
        fill = np.zeros(n * h * w, dtype=x.dtype) if self.fill_mode == "constant" else None
        taps = []
        y_taps = _taps(src_y, h, self.interpolation, self.fill_mode, x.dtype)
        x_taps = _taps(src_x, w, self.interpolation, self.fill_mode, x.dtype)
        for iy, wy, vy in y_taps:
            row = base + iy * w
            for ix, wx, vx in x_taps:
                index = (row + ix).reshape(-1)
                weight = None if wy is None else (wy * wx).reshape(-1)
                if vy is not None:   # constant fill: taps outside the image read fill_value
                    valid = (vy & vx).reshape(-1)
                    lost = ~valid if weight is None else np.where(valid, 0, weight)
                    fill += lost
                    weight = valid.astype(x.dtype) if weight is None else weight * valid
                taps.append((index, weight))
                gathered = np.take(flat, index, axis=0)
                if weight is not None:
                    gathered *= weight[:, None]
                out += gathered
        if fill is not None and self.fill_value != 0.0:
            out += (fill * x.dtype.type(self.fill_value))[:, None]
        ctx.taps, ctx.shape = taps, x.shape
        return out.reshape(x.shape)

    def _augment_grad(self, ctx, g):
        n, h, w, c = ctx.shape
        size = n * h * w
        g = g.reshape(size, c)
        dx = np.zeros((c, size), dtype=np.float64)
        for index, weight in ctx.taps:   # the transpose of the gather: scatter-add each tap's share
            for k in range(c):
                share = g[:, k] if weight is None else g[:, k] * weight
                dx[k] += np.bincount(index, weights=share, minlength=size)
        return np.ascontiguousarray(dx.T.reshape(ctx.shape)).astype(g.dtype, copy=False)

    def _affine_config(self):
        return {"fill_mode": self.fill_mode, "interpolation": self.interpolation, "seed": self.seed,
                "fill_value": self.fill_value, "data_format": self.data_format}


class RandomRotation(_AffineLayer):
    """Rotate each image by a random angle in training: uniform in [lower, upper] * 360 degrees,
    about the image centre (Keras 3). `factor`: a number f in [-1, 1] (the range [-|f|, |f|])
    or a pair (lower, upper). Keras's matrix [cos, -sin; sin, cos] about the centre maps each
    output pixel to the source point it reads.

    Args:
        factor: Range of the random factor: a float `f` gives `[-f, f]` (or a pair `(lower, upper)`).
        fill_mode: How points outside the input are filled: `"constant"`, `"reflect"`, `"wrap"` or
            `"nearest"`.
        interpolation: Interpolation method: `"bilinear"` or `"nearest"`.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        fill_value: Value of the points outside the input when `fill_mode="constant"`.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def __init__(self, factor: Any, fill_mode: str = "reflect", interpolation: str = "bilinear",
                 seed: int | None = None, fill_value: float = 0.0, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        self.factor = _factor_range("factor", factor, -1.0, 1.0)

    def _matrices(self, rng, n, h, w):
        angle = np.deg2rad(rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=n))
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
        cos, sin = np.cos(angle), np.sin(angle)
        a0, a1, b0, b1 = cos, -sin, sin, cos
        return np.stack([a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1], axis=1)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), **self._affine_config()}


class RandomZoom(_AffineLayer):
    """Zoom each image by a random factor in training (Keras 3): the source window is
    (1 + z) times the image, z uniform in [lower, upper] (negative: zoom in, positive: zoom out),
    about the centre. `height_factor` (and `width_factor`, default: the same draw as the height)
    is a number f in (-1, 1] (the range [-|f|, |f|]) or a pair.

    Args:
        height_factor: Range of the random vertical shift or zoom, as a fraction of the height (a float or a
            pair).
        width_factor: Range of the random horizontal shift or zoom, as a fraction of the width (a float or a
            pair, `None`: same as height).
        fill_mode: How points outside the input are filled: `"constant"`, `"reflect"`, `"wrap"` or
            `"nearest"`.
        interpolation: Interpolation method: `"bilinear"` or `"nearest"`.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        fill_value: Value of the points outside the input when `fill_mode="constant"`.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def __init__(self, height_factor: Any, width_factor: Any = None, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        self._height_range = _factor_range("height_factor", height_factor, -1.0, 1.0, low_open=True)
        self._width_range = None if width_factor is None else \
            _factor_range("width_factor", width_factor, -1.0, 1.0, low_open=True)
        self.height_factor = list(height_factor) if isinstance(height_factor, (list, tuple)) else float(height_factor)
        self.width_factor = None if width_factor is None else (
            list(width_factor) if isinstance(width_factor, (list, tuple)) else float(width_factor))

    def _matrices(self, rng, n, h, w):
        zy = rng.uniform(1.0 + self._height_range[0], 1.0 + self._height_range[1], size=n)
        zx = zy if self._width_range is None else rng.uniform(1.0 + self._width_range[0],
                                                               1.0 + self._width_range[1], size=n)
        zero = np.zeros(n)
        return np.stack([zx, zero, (w - 1.0) / 2.0 * (1.0 - zx), zero, zy, (h - 1.0) / 2.0 * (1.0 - zy)], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor,
                **self._affine_config()}


class RandomTranslation(_AffineLayer):
    """Shift each image by a random fraction of its size in training (Keras 3): vertically by
    uniform [lower, upper] * height, horizontally by uniform [lower, upper] * width.

    Args:
        height_factor: a number f in [-1, 1] (the range [-|f|, |f|]) or a pair (lower, upper): the
            vertical shift as a fraction of the height.
        width_factor: the same for the horizontal shift, as a fraction of the width.
        fill_mode: How points outside the input are filled: `"constant"`, `"reflect"`, `"wrap"` or
            `"nearest"`.
        interpolation: Interpolation method: `"bilinear"` or `"nearest"`.
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        fill_value: Value of the points outside the input when `fill_mode="constant"`.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def __init__(self, height_factor: Any, width_factor: Any, fill_mode: str = "reflect",
                 interpolation: str = "bilinear", seed: int | None = None, fill_value: float = 0.0,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(fill_mode=fill_mode, interpolation=interpolation, seed=seed, fill_value=fill_value,
                         data_format=data_format, **kwargs)
        self._height_range = _factor_range("height_factor", height_factor, -1.0, 1.0)
        self._width_range = _factor_range("width_factor", width_factor, -1.0, 1.0)
        self.height_factor = list(height_factor) if isinstance(height_factor, (list, tuple)) else float(height_factor)
        self.width_factor = list(width_factor) if isinstance(width_factor, (list, tuple)) else float(width_factor)

    def _matrices(self, rng, n, h, w):
        ty = rng.uniform(self._height_range[0], self._height_range[1], size=n) * h
        tx = rng.uniform(self._width_range[0], self._width_range[1], size=n) * w
        one, zero = np.ones(n), np.zeros(n)
        return np.stack([one, zero, -tx, zero, one, -ty], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor,
                **self._affine_config()}


# --- value layers ----------------------------------------------------------------------------
def _value_range(value):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"value_range must be a pair (low, high); received value_range={value!r}")
    low, high = sorted(_number("value_range", v) for v in value)
    return [low, high]


class RandomContrast(_RandomImageLayer):
    """Scale each image's deviation from its per-channel mean by a random factor in training,
    `(x - mean) * f + mean`, clipped to `value_range` (Keras 3). f is uniform in
    [1 - lower, 1 + upper] where `factor` in [0, 1] gives (lower, upper) by Keras's rule: a number
    f gives (0, f) (so f >= 1: Keras 3.15's behaviour), a pair gives itself.

    Args:
        factor: Range of the random factor: a float `f` gives `[-f, f]` (or a pair `(lower, upper)`).
        value_range: The `(min, max)` range of the input values (the output is clipped to it).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def __init__(self, factor: Any, value_range: Sequence[float] = (0, 255), seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = _factor_range("factor", factor, 0.0, 1.0)
        self.value_range = _value_range(value_range)

    def _augment(self, ctx, x, rng):
        f = rng.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=(x.shape[0], 1, 1, 1)).astype(x.dtype)
        mean = x.mean(axis=(1, 2), keepdims=True)
        y = (x - mean) * f + mean
        ctx.factor = f
        ctx.keep = (y >= self.value_range[0]) & (y <= self.value_range[1])
        return np.clip(y, self.value_range[0], self.value_range[1])

    def _augment_grad(self, ctx, g):
        g = g * ctx.keep
        return g * ctx.factor + (1 - ctx.factor) * g.mean(axis=(1, 2), keepdims=True)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range),
                "seed": self.seed, "data_format": self.data_format}


class RandomBrightness(_RandomImageLayer):
    """Add a random offset to each image in training, clipped to `value_range` (Keras 3): the
    offset is uniform in [lower, upper] * (high - low) of value_range; `factor` is a number f in
    [-1, 1] (the range [-|f|, |f|]) or a pair (lower, upper).

    Args:
        factor: Range of the random factor: a float `f` gives `[-f, f]` (or a pair `(lower, upper)`).
        value_range: The `(min, max)` range of the input values (the output is clipped to it).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`, the default) or `"channels_first"`
            (`(batch, channels, ...)`); `None` uses `cynet.config.image_data_format()`.
    """

    def __init__(self, factor: Any, value_range: Sequence[float] = (0, 255), seed: int | None = None,
                 data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = _factor_range("factor", factor, -1.0, 1.0)
        self.value_range = _value_range(value_range)

    def _augment(self, ctx, x, rng):
        delta = rng.uniform(self.factor[0], self.factor[1], size=(x.shape[0], 1, 1, 1))
        y = x + (delta * (self.value_range[1] - self.value_range[0])).astype(x.dtype)
        ctx.keep = (y >= self.value_range[0]) & (y <= self.value_range[1])
        return np.clip(y, self.value_range[0], self.value_range[1])

    def _augment_grad(self, ctx, g):
        return g * ctx.keep

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range),
                "seed": self.seed, "data_format": self.data_format}


# --- RandomCrop --------------------------------------------------------------------------------
class RandomCrop(_ImageLayer):
    """Crop each batch of images to `height` x `width` (Keras 3's RandomCrop).

    Training (fit, or `training=True`): when the images are larger than the target in both
    height and width, one window of the target size at a random position (uniform over all
    positions, one draw per batch: Keras crops every image of a batch at the same place). When
    they are not (smaller, or equal in one dimension), Keras's fallback: the slice
    `[h0:h0 + height, w0:w0 + width]` from the start of the centred window of the target aspect
    ratio, resized bilinearly to the target when it is smaller, exactly as Keras 3.15 computes it.

    Inference: the largest centred window of the target aspect ratio, resized bilinearly to
    `height` x `width` (Keras's documented behaviour, `Resizing(crop_to_aspect_ratio=True)`).
    Keras 3.15 itself returns the images unchanged at inference, which contradicts its own
    `compute_output_shape`; cynet keeps the declared output shape.

    The output is linear in the input, so the input gradient is exact: the transposed resize
    scattered into the cropped window, zero elsewhere.

    Args:
        height: The output height (a positive int).
        width: The output width (a positive int).
        seed: Int seed of the layer's random draws, for reproducibility; `None` uses cynet's global generator.
        data_format: `"channels_last"` (inputs `(batch, height, width, channels)`, the default) or
            `"channels_first"` (`(batch, channels, height, width)`); `None` uses
            `cynet.config.image_data_format()`.
    """

    def __init__(self, height: int, width: int, seed: int | None = None, data_format: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format=data_format, **kwargs)
        self.height = _checks.positive_int("height", height)
        self.width = _checks.positive_int("width", width)
        self.seed = _seed(seed)
        self._rng = make_rng(seed) if seed is not None else None

    def compute_output_shape(self, input_shape):
        shape = list(super().compute_output_shape(input_shape))
        h, w = self._hw_axes()
        for axis in (h, w):
            if shape[axis] == 0:
                raise ValueError(f"{self._who()}: inputs of shape {tuple(input_shape)} hold empty images (axis "
                                 f"{axis} has size 0): there is nothing to crop")
        shape[h], shape[w] = self.height, self.width
        return tuple(shape)

    def _aspect_box(self, h, w):
        """(h0, w0, ch, cw): Keras's centred window of the target aspect ratio."""
        ch = max(min(h, int(float(w * self.height) / self.width)), 1)
        cw = max(min(w, int(float(h * self.width) / self.height)), 1)
        return int(float(h - ch) / 2), int(float(w - cw) / 2), ch, cw

    def _window(self, h, w, training):
        """(h0, w0, ch, cw): the part of each image the output is made of."""
        if not training:
            return self._aspect_box(h, w)
        if h > self.height and w > self.width:
            rng = self._rng if self._rng is not None else make_rng(None)
            h0 = int(rng.uniform(0, float(h - self.height + 1)))
            w0 = int(rng.uniform(0, float(w - self.width + 1)))
            return min(h0, h - self.height), min(w0, w - self.width), self.height, self.width
        h0, w0, _, _ = self._aspect_box(h, w)
        return h0, w0, min(self.height, h - h0), min(self.width, w - w0)

    def _forward(self, ctx, inputs, training):
        x = inputs if self.data_format == "channels_last" else inputs.transpose(0, 2, 3, 1)
        h0, w0, ch, cw = self._window(x.shape[1], x.shape[2], bool(training))
        y = x[:, h0:h0 + ch, w0:w0 + cw]
        mats = None
        if (ch, cw) != (self.height, self.width):
            mats = (_bilinear_matrix(ch, self.height, inputs.dtype), _bilinear_matrix(cw, self.width, inputs.dtype))
            y = np.einsum("oh,nhwc->nowc", mats[0], y, optimize=True)
            y = np.einsum("pw,nowc->nopc", mats[1], y, optimize=True)
        ctx.window, ctx.mats, ctx.shape = (h0, w0, ch, cw), mats, x.shape
        return np.ascontiguousarray(y if self.data_format == "channels_last" else y.transpose(0, 3, 1, 2))

    def _backward(self, ctx, grad, need_input_grad):
        if not need_input_grad:
            return None
        g = grad if self.data_format == "channels_last" else grad.transpose(0, 2, 3, 1)
        if ctx.mats is not None:
            g = np.einsum("oh,nopc->nhpc", ctx.mats[0], g, optimize=True)
            g = np.einsum("pw,nhpc->nhwc", ctx.mats[1], g, optimize=True)
        h0, w0, ch, cw = ctx.window
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        full[:, h0:h0 + ch, w0:w0 + cw] = g
        return np.ascontiguousarray(full if self.data_format == "channels_last" else full.transpose(0, 3, 1, 2))

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "seed": self.seed,
                "data_format": self.data_format}
