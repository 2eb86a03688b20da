"""Categorical and text preprocessing layers (Keras 3), in NumPy and plain Python, without
TensorFlow: CategoryEncoding, Hashing, IntegerLookup, StringLookup, TextVectorization.

Keras 3 runs all but CategoryEncoding through TensorFlow (on the PyTorch and JAX backends they
raise ImportError without it); cynet gives the same results without it:

* Hashing hashes values as TensorFlow does (FarmHash Fingerprint64, or SipHash-2-4 keyed with
  `salt`, of the value's UTF-8 bytes; integers as their decimal strings), see `_string_hash`.
* The lookups index their vocabulary as Keras's IndexLookup: [mask token] (int output only),
  `num_oov_indices` OOV slots, then the vocabulary; `adapt` orders tokens by count, ties by the
  token, highest first (Keras's `lexsort(...)[::-1]`); inverse document frequencies are
  log(1 + documents / (1 + documents holding the token)). Out-of-vocabulary values, with
  several OOV slots, go to slot `hash % num_oov_indices` (integers: `value % num_oov_indices`).
* TextVectorization standardizes (ASCII lowercasing, as tf.strings.lower; Keras's punctuation
  pattern), splits on ASCII whitespace runs (tf.strings.split) or into characters, forms
  n-grams joined by " " (all widths of `ngrams` in turn, as tf.strings.ngrams), and looks
  tokens up in a StringLookup with mask token "" (index 0 pads int outputs).

Inputs: Python lists, NumPy string / bytes / object arrays (strings), integer arrays (the
integer layers; integral floats are taken too), always with a batch axis. Outputs: int64 arrays
(output_mode="int"), float arrays of the layer's dtype (one_hot, multi_hot, count, tf_idf), or
strings (an inverted StringLookup). These layers are not differentiable: their outputs are
piecewise constant in (or not numeric functions of) their inputs, so they return no input
gradient (None); they sit at the start of a model, where none is needed. They work as the first
layer of a Sequential or Functional model (`cynet.Input(shape, dtype="string")` for text) and in
`model.fit` / `model.predict` on string arrays.

Not supported (Keras features that need TensorFlow's sparse or ragged tensors, or files):
`sparse=True`, `ragged=True`, vocabulary files (a path string) raise.
"""
import collections
import re
from typing import Any

import numpy as np

from .. import _validation as _checks
from ._string_hash import fingerprint64, siphash
from .base import Layer


# ----------------------------------------------------------------------------- input conversion
def as_strings(layer, inputs):
    """`inputs` as an object array of Python str (bytes decoded as UTF-8), with a batch axis."""
    name = f"{layer._who()}: inputs"
    if isinstance(inputs, np.ndarray):
        x = inputs
    else:
        try:
            x = np.asarray(inputs, dtype=object) if isinstance(inputs, (list, tuple)) else np.asarray(inputs)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} must be an array of strings with one row per sample; {exc}") from None
    if x.ndim == 0:
        raise ValueError(f"{name} need a batch axis; received a scalar")
    _checks.check_size(name, x.shape, 64, "the strings (Python objects)")
    if x.dtype.kind == "U":
        return x.astype(object)
    if x.dtype.kind == "S":
        return np.char.decode(x, "utf-8").astype(object)
    if x.dtype.kind == "O":
        flat = x.reshape(-1)
        if all(type(v) is str for v in flat):
            return x
        out = np.empty(x.shape, dtype=object)
        dst = out.reshape(-1)
        for i, v in enumerate(flat):
            if isinstance(v, bytes):
                dst[i] = v.decode("utf-8")
            elif isinstance(v, str):
                dst[i] = str(v)
            else:
                raise TypeError(f"{name} must hold strings; received an element of type {type(v).__name__} "
                                f"(a ragged list is not an array either)")
        return out
    raise TypeError(f"{name} must hold strings; received dtype {x.dtype}")


def as_integers(layer, inputs):
    """`inputs` as an int64 array (integers, bools, integral finite floats), with a batch axis."""
    name = f"{layer._who()}: inputs"
    x = inputs if isinstance(inputs, np.ndarray) else _checks.as_array(name, inputs)
    if x.ndim == 0:
        raise ValueError(f"{name} need a batch axis; received a scalar")
    if x.dtype.kind in "biuf":
        _checks.check_size(name, x.shape, 8, "the inputs as int64")
    if x.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            if not np.isfinite(x).all() or (x != np.floor(x)).any() or (np.abs(x) >= 2.0 ** 63).any():
                raise ValueError(f"{name} must be integers; received non-integral or non-finite values")
        return x.astype(np.int64)
    if x.dtype.kind not in "biu":
        raise TypeError(f"{name} must be integers; received dtype {x.dtype}")
    if x.dtype.kind == "u" and x.size and x.max() >= 2 ** 63:
        raise ValueError(f"{name} must fit int64; received values up to {x.max()}")
    return x.astype(np.int64, copy=False)


def _choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {list(options)}; received {name}={value!r}")
    return value


def _optional_int(name, value, low):
    if value is None:
        return None
    if not _checks.is_int(value) or value < low:
        raise ValueError(f"{name} must be None or an integer >= {low}; received {name}={value!r}")
    return int(value)


def _no_sparse(sparse):
    if not isinstance(sparse, (bool, np.bool_)):
        raise TypeError(f"sparse must be a bool; received sparse={sparse!r}")
    if sparse:
        raise ValueError("sparse=True is not supported (Keras supports it only with the TensorFlow backend); "
                         "outputs are dense arrays")
    return False


def encode(indices, mode, depth, dtype, weights=None):
    """Keras's encode_categorical_inputs on int64 `indices` (-1: dropped, a mask): one_hot (a
    trailing axis of 1 is replaced), multi_hot / count (the last axis is reduced); `weights`
    (one per index: tf_idf's inverse document frequencies) multiply the counts."""
    if mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices[..., 0]
        out = np.zeros(indices.shape + (depth,), dtype=dtype)
        flat = out.reshape(-1, depth)
        idx = indices.reshape(-1)
        keep = (idx >= 0) & (idx < depth)
        flat[np.nonzero(keep)[0], idx[keep]] = 1
        return out
    rows = int(np.prod(indices.shape[:-1]))
    idx = indices.reshape(rows, -1)
    keep = (idx >= 0) & (idx < depth)
    keys = (np.arange(rows)[:, None] * depth + idx)[keep]
    counts = np.bincount(keys, minlength=rows * depth).reshape(indices.shape[:-1] + (depth,))
    if mode == "multi_hot":
        return (counts > 0).astype(dtype)
    counts = counts.astype(dtype)
    if weights is not None:   # tf_idf: the counts times each index's inverse document frequency
        counts *= weights.astype(dtype)
    return counts


def _encoded_shape(shape, mode, depth):
    shape = tuple(shape)
    if mode == "one_hot":
        return (shape[:-1] if len(shape) > 1 and shape[-1] == 1 else shape) + (depth,)
    return shape[:-1] + (depth,)


class _NotDifferentiable(Layer):
    """A preprocessing layer with no input gradient (see the module docstring)."""

    _string_input = False

    def _backward(self, ctx, grad, need_input_grad):
        return None

    def _check_reduced_rank(self, x, mode):
        if mode in ("multi_hot", "count", "tf_idf") and x.ndim != 2:
            raise ValueError(f"{self._who()}: inputs must be 2-dimensional (batch, values) for output_mode={mode!r}, "
                             f"which reduces the values of each sample to one vector; received shape {x.shape} "
                             f"(Keras reduces a 1-D batch to one vector and, beyond 2-D, reduces axis 1 although its "
                             f"output shape keeps it; reshape to (batch, values))")


# ----------------------------------------------------------------------------- CategoryEncoding
class CategoryEncoding(_NotDifferentiable):
    """Integer category ids in [0, num_tokens) as one-hot, multi-hot or count vectors (Keras 3).

    one_hot: one vector per value (a trailing axis of size 1 is replaced by the vectors);
    multi_hot / count: one vector per row of the last axis (inputs at least 2-D). `count_weights`
    (a call argument, count mode only) weights each value's count. Not differentiable.

    Args:
        num_tokens: Number of categories (indices must be in `[0, num_tokens)`).
        output_mode: `"one_hot"`, `"multi_hot"` (the default) or `"count"`.
        sparse: Must be `False`: sparse outputs are not supported (Keras has them only on the TensorFlow
            backend).
    """

    def __init__(self, num_tokens: int | None = None, output_mode: str = "multi_hot", sparse: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_tokens is None:
            raise ValueError("num_tokens must be set to use this layer; if the number of tokens is not known "
                             "beforehand, use IntegerLookup instead")
        self.num_tokens = _checks.positive_int("num_tokens", num_tokens)
        if output_mode == "binary":
            output_mode = "multi_hot"
        self.output_mode = _choice("output_mode", output_mode, ("count", "one_hot", "multi_hot"))
        self.sparse = _no_sparse(sparse)

    def _convert_input(self, inputs):
        x = as_integers(self, inputs)
        _checks.check_size(f"{self._who()}: inputs", x.shape + (self.num_tokens,), self.dtype.itemsize, "the output")
        return x

    def _check_input(self, x):
        super()._check_input(x)
        self._check_reduced_rank(x, self.output_mode)
        if isinstance(x, np.ndarray) and x.size and (x.min() < 0 or x.max() >= self.num_tokens):
            raise ValueError(f"{self._who()}: inputs must hold values in the range 0 <= values < num_tokens with "
                             f"num_tokens={self.num_tokens}; received inputs with values from {x.min()} to {x.max()}")

    def compute_output_shape(self, input_shape):
        return _encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def _forward(self, ctx, inputs, training, count_weights=None):
        if count_weights is None:
            return encode(inputs, self.output_mode, self.num_tokens, self.dtype)
        if self.output_mode != "count":
            raise ValueError(f"{self._who()}: count_weights is only used when output_mode='count'; received "
                             f"output_mode={self.output_mode!r}")
        w = _checks.as_array(f"{self._who()}: count_weights", count_weights)
        if w.shape != inputs.shape or w.dtype.kind not in "biuf":
            raise ValueError(f"{self._who()}: count_weights must be numbers of the inputs' shape {inputs.shape}; "
                             f"received shape {w.shape}")
        rows = int(np.prod(inputs.shape[:-1]))
        keys = (np.arange(rows)[:, None] * self.num_tokens + inputs.reshape(rows, -1)).reshape(-1)
        out = np.bincount(keys, weights=w.reshape(-1).astype(np.float64), minlength=rows * self.num_tokens)
        return out.reshape(inputs.shape[:-1] + (self.num_tokens,)).astype(self.dtype)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode,
                "sparse": self.sparse}


# ----------------------------------------------------------------------------- Hashing
def _salt(value):
    if value is None:
        return None
    if _checks.is_int(value) and 0 <= value < 2 ** 64:
        return [int(value), int(value)]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_checks.is_int(v) and 0 <= v < 2 ** 64
                                                                   for v in value):
        return [int(v) for v in value]
    raise ValueError(f"salt must be None, a non-negative integer or a pair of them (a 128-bit key); received "
                     f"salt={value!r}")


def _token_bytes(values):
    """The bytes TensorFlow hashes for each value: a string's UTF-8, an integer's decimal digits."""
    if values.dtype == object:
        return [v.encode("utf-8") for v in values.reshape(-1)]
    return [str(int(v)).encode() for v in values.reshape(-1)]


def hash_buckets(values, buckets, salt=None):
    """`values` (str objects or int64) hashed into [0, buckets), as tf.strings.to_hash_bucket_fast
    (no salt) or to_hash_bucket_strong (key = salt)."""
    if salt is None:
        hashed = [fingerprint64(b) % buckets for b in _token_bytes(values)]
    else:
        key = (salt[0], salt[1])
        hashed = [siphash(key, b) % buckets for b in _token_bytes(values)]
    return np.asarray(hashed, dtype=np.int64).reshape(values.shape)


class Hashing(_NotDifferentiable):
    """Hash strings or integers into `num_bins` bins (Keras 3, TensorFlow's hashes: see the module
    docstring). With `mask_value`, that value goes to bin 0 and the others to bins 1..num_bins-1.
    output_mode "int" (int64 bin ids), "one_hot", "multi_hot" or "count". Not differentiable.

    Args:
        num_bins: Number of hash bins (including the mask bin when `mask_value` is given).
        mask_value: A value that always maps to bin 0 (the mask bin); the others hash into bins
            `1..num_bins-1`. `None`: no mask bin.
        salt: Optional salt (a non-negative int or a pair of them, a 128-bit key) for a keyed hash, as
            Keras's salted hashing.
        output_mode: `"int"` (bin indices), `"one_hot"`, `"multi_hot"` or `"count"`.
        sparse: Must be `False`: sparse outputs are not supported (Keras has them only on the TensorFlow
            backend).
    """

    def __init__(self, num_bins: int, mask_value: Any = None, salt: Any = None, output_mode: str = "int",
                 sparse: bool = False, **kwargs: Any) -> None:
        dtype = kwargs.get("dtype")
        if isinstance(dtype, str) and dtype in ("int32", "int64"):
            kwargs.pop("dtype")   # (Keras's dtype of int outputs)
        super().__init__(**kwargs)
        self.num_bins = _checks.positive_int("num_bins", num_bins)
        if mask_value is not None and not isinstance(mask_value, str) and not _checks.is_int(mask_value):
            raise TypeError(f"mask_value must be None, a string or an integer; received mask_value={mask_value!r}")
        self.mask_value = mask_value if mask_value is None or isinstance(mask_value, str) else int(mask_value)
        self.salt = _salt(salt)
        self.output_mode = _choice("output_mode", output_mode, ("int", "one_hot", "multi_hot", "count"))
        self.sparse = _no_sparse(sparse)

    _string_input = True

    def _convert_input(self, inputs):
        x = inputs if isinstance(inputs, np.ndarray) else None
        if x is not None and x.dtype.kind in "biuf":
            return as_integers(self, x)
        if x is None:
            try:
                probe = np.asarray(inputs)
            except (ValueError, TypeError):
                probe = None
            if probe is not None and probe.dtype.kind in "biuf":
                return as_integers(self, probe)
        return as_strings(self, inputs)

    def _check_input(self, x):
        super()._check_input(x)
        self._check_reduced_rank(x, self.output_mode)

    def _output_dtype(self):
        return "int64" if self.output_mode == "int" else self.dtype.name

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return _encoded_shape(input_shape, self.output_mode, self.num_bins)

    def _forward(self, ctx, inputs, training):
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = inputs == self.mask_value if (inputs.dtype == object) == isinstance(self.mask_value, str) \
                else np.zeros(inputs.shape, dtype=bool)
        ids = hash_buckets(inputs, bins, self.salt)
        if mask is not None:
            ids = np.where(mask, 0, ids + 1)
        if self.output_mode == "int":
            return ids
        return encode(ids, self.output_mode, self.num_bins, self.dtype)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                "output_mode": self.output_mode, "sparse": self.sparse}


# ----------------------------------------------------------------------------- lookups
_OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _output_mode(value):
    value = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(value, value) if isinstance(value, str) else value
    return _choice("output_mode", value, _OUTPUT_MODES)


class _IndexLookup(_NotDifferentiable):
    """Keras's IndexLookup: a vocabulary of tokens mapped to indices (or back, `invert`)."""

    _string_input = False

    def __init__(self, max_tokens: int | None, num_oov_indices: int, mask_token: Any, oov_token: Any, vocabulary: Any,
                 idf_weights: Any, invert: bool, output_mode: str, pad_to_max_tokens: bool, sparse: bool,
                 **kwargs: Any) -> None:
        kwargs.pop("vocabulary_size", None)   # (Keras's config entry: the size follows from the vocabulary)
        if kwargs.get("dtype") in ("int32", "int64", "string"):
            kwargs.pop("dtype")   # (Keras's dtype of the indices or tokens; float outputs take the layer's dtype)
        super().__init__(**kwargs)
        self.max_tokens = _optional_int("max_tokens", max_tokens, 2)
        self.num_oov_indices = _optional_int("num_oov_indices", num_oov_indices, 0)
        if self.num_oov_indices is None:
            raise ValueError("num_oov_indices must be an integer >= 0; received num_oov_indices=None")
        self.mask_token = self._token("mask_token", mask_token)
        self.oov_token = self._token("oov_token", oov_token)
        self.invert = _checks.flag("invert", invert)
        self.output_mode = _output_mode(output_mode)
        self.pad_to_max_tokens = _checks.flag("pad_to_max_tokens", pad_to_max_tokens)
        self.sparse = _no_sparse(sparse)
        if self.pad_to_max_tokens and self.max_tokens is None:
            raise ValueError("If pad_to_max_tokens is True, max_tokens must be set; received max_tokens=None")
        if self.invert and self.output_mode != "int":
            raise ValueError(f"output_mode must be 'int' when invert is True; received output_mode={output_mode!r}")
        if idf_weights is not None and self.output_mode != "tf_idf":
            raise ValueError(f"idf_weights should only be set if output_mode is 'tf_idf'; received "
                             f"output_mode={self.output_mode!r}")
        if self.output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError("When setting the vocabulary argument in output_mode='tf_idf', the idf_weights "
                             "argument must also be set")
        if isinstance(vocabulary, (str, bytes)):
            raise NotImplementedError("a vocabulary file (vocabulary=path) is not supported: pass the vocabulary "
                                      "as a list")
        self._tokens: list[Any] = []      # the vocabulary without its special tokens
        self._index: dict[Any, int] = {}  # token -> index
        self._inverse: dict[int, Any] = {}  # index -> token
        self._idf = None
        self._has_input_vocabulary = vocabulary is not None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ------------------------------------------------------------------ tokens
    def _token(self, name, value):
        raise NotImplementedError

    def _tokens_of(self, name, values):
        raise NotImplementedError

    def _oov_start(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self):
        return self._oov_start() + self.num_oov_indices

    def vocabulary_size(self):
        """The size of the vocabulary, mask and OOV indices included."""
        return self._token_start() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens=True):
        """The tokens in index order: [mask token] (int output), the OOV tokens, the vocabulary.

        Args:
            include_special_tokens: Whether the returned vocabulary (or its size) includes the mask and OOV
                tokens.
        """
        vocab = [self.oov_token] * self._token_start() + list(self._tokens)
        if self.mask_token is not None and self.output_mode == "int":
            vocab[0] = self.mask_token
        return vocab if include_special_tokens else vocab[self._token_start():]

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (a list or 1-D array of tokens, with or without the special tokens
        at its start) and, for tf_idf, the inverse document frequencies (one per token given).

        Args:
            vocabulary: A list of tokens (or a path to a file with one per line); `None` to learn it with
                `adapt`.
            idf_weights: Inverse document frequency weights, one per vocabulary entry (only with
                `output_mode="tf_idf"`).
        """
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError("idf_weights must be set if output_mode is 'tf_idf'")
        elif idf_weights is not None:
            raise ValueError(f"idf_weights should only be set if output_mode is 'tf_idf'; received "
                             f"output_mode={self.output_mode!r}")
        if isinstance(vocabulary, (str, bytes)):
            raise NotImplementedError("a vocabulary file (vocabulary=path) is not supported: pass the vocabulary "
                                      "as a list")
        tokens = self._tokens_of("vocabulary", vocabulary)
        if not tokens:
            raise ValueError("Cannot set an empty vocabulary")
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        found_special = len(tokens) >= len(special) and tokens[:len(special)] == special
        given = len(tokens)
        if found_special:
            tokens = tokens[len(special):]
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"The passed vocabulary has at least one repeated term; the repeated terms are "
                             f"{repeated}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"Found the reserved mask token {self.mask_token!r} at an unexpected place in the "
                             f"vocabulary: leave the mask and OOV tokens out, or put them only at its start, in this "
                             f"order: {special}")
        if self.oov_token is not None and self.invert and self.oov_token in tokens:
            raise ValueError(f"Found the reserved OOV token {self.oov_token!r} at an unexpected place in the "
                             f"vocabulary: leave the mask and OOV tokens out, or put them only at its start, in this "
                             f"order: {special}")
        size = self._token_start() + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(f"Attempted to set a vocabulary larger than the maximum vocabulary size: the vocabulary "
                             f"size is {size}; max_tokens is {self.max_tokens}")
        idf = None
        if idf_weights is not None:
            idf = _checks.as_array("idf_weights", idf_weights)
            if idf.ndim != 1 or idf.dtype.kind not in "biuf" or not np.isfinite(idf).all():
                raise ValueError(f"idf_weights must be a 1-D array of finite numbers; received shape {idf.shape}")
            if len(idf) != given:
                raise ValueError(f"idf_weights must be the same length as the vocabulary: len(idf_weights) is "
                                 f"{len(idf)}; len(vocabulary) is {given}")
            idf = idf.astype(np.float64)
            if not found_special:
                idf = np.concatenate([np.full(self._token_start(), idf.mean()), idf])
        self._store(tokens, idf)
        self._has_input_vocabulary = True

    def _store(self, tokens, idf):
        self._tokens = list(tokens)
        start = self._token_start()
        self._index = {t: start + i for i, t in enumerate(self._tokens)}
        self._inverse = dict(enumerate(self.get_vocabulary()))
        if idf is not None and self.pad_to_max_tokens:
            idf = np.concatenate([idf, np.zeros(self.max_tokens - len(idf))])
        self._idf = idf

    # ------------------------------------------------------------------ adapt
    def adapt(self, data, steps=None):
        """Build the vocabulary from `data`: an array or list of tokens (one batch), or an
        iterable of batches (a generator); `steps` limits the batches read from an iterable.

        Args:
            data: Data to compute the layer's state from (an array, or an iterable of batches).
            steps: Number of batches to draw from `data` (`None`: all).
        """
        if self._has_input_vocabulary:
            raise ValueError(f"{self._who()}: cannot adapt after setting a static vocabulary via the vocabulary "
                             f"argument or set_vocabulary()")
        counts, documents, n_docs = collections.Counter(), collections.Counter(), 0
        for i, batch in enumerate(_batches(data)):
            if steps is not None and i >= steps:
                break
            rows = self._adapt_rows(batch, i)
            for row in rows:
                counts.update(row)
                documents.update(set(row))
            n_docs += len(rows)
        self._finalize(counts, documents, n_docs)

    def _adapt_rows(self, batch, i):
        """The documents (lists of tokens) of one batch of adapt data (a list of lists may be ragged)."""
        if isinstance(batch, (list, tuple)) and batch and all(isinstance(r, (list, tuple)) for r in batch) \
                and len({len(r) for r in batch}) > 1:
            return [list(self._convert_input(np.asarray(r, dtype=object if self._string_input else None)).reshape(-1))
                    if r else [] for r in batch]
        x = self._convert_input(batch)
        if x.ndim == 1:
            x = x[:, None]
        return [list(row.reshape(-1)) for row in x]

    def _finalize(self, counts, documents, n_docs):
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        if not counts:
            return
        order = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
        if self.max_tokens:
            order = order[:self.max_tokens - self._token_start()]
        idf = None
        if self.output_mode == "tf_idf":
            idf = np.log(1.0 + n_docs / (1.0 + np.array([documents[t] for t in order], dtype=np.float64)))
            idf = np.concatenate([np.full(self._token_start(), idf.mean()), idf])
        self._store(order, idf)

    # ------------------------------------------------------------------ call
    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()

    def _check_input(self, x):
        super()._check_input(x)
        self._check_reduced_rank(x, self.output_mode)
        if self.output_mode in ("one_hot", "multi_hot", "count", "tf_idf") and not self.pad_to_max_tokens \
                and not self._tokens:
            raise RuntimeError(f"{self._who()}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False, "
                               f"the vocabulary must be set before calling the layer: pass vocabulary= or call "
                               f"adapt()")

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return _encoded_shape(input_shape, self.output_mode, self._depth())

    def _output_dtype(self):
        if self.invert:
            return self._token_dtype
        return "int64" if self.output_mode == "int" else self.dtype.name

    def _lookup(self, x):
        """The int64 indices of the tokens `x` (-1 for masked values outside int output)."""
        flat = x.reshape(-1)
        missing = -2
        ids = np.fromiter((self._index.get(t, missing) for t in flat.tolist()), dtype=np.int64, count=flat.size)
        oov = ids == missing
        if oov.any():
            if self.num_oov_indices == 0:
                found = sorted(set(flat[oov].tolist()), key=str)[:10]
                raise ValueError(f"{self._who()}: when num_oov_indices=0 all inputs must be in the vocabulary; found "
                                 f"out-of-vocabulary values {found}; consider setting num_oov_indices=1")
            ids[oov] = self._oov_start() + self._oov_slots(flat[oov])
        if self.mask_token is not None:
            ids[flat == self.mask_token] = 0 if self.output_mode == "int" else -1
        return ids.reshape(x.shape)

    def _oov_slots(self, values):
        if self.num_oov_indices == 1:
            return 0
        return hash_buckets(values, self.num_oov_indices)

    def _forward(self, ctx, inputs, training):
        if self.invert:
            return self._invert(inputs)
        ids = self._lookup(inputs)
        if self.output_mode == "int":
            return ids
        weights = None
        if self.output_mode == "tf_idf":
            if self._idf is None:
                raise ValueError(f"{self._who()}: output_mode='tf_idf' needs idf_weights (adapt the layer or pass "
                                 f"vocabulary= and idf_weights=)")
            weights = self._idf
        return encode(ids, "count" if self.output_mode == "tf_idf" else self.output_mode, self._depth(), self.dtype,
                      weights)

    def _invert(self, ids):
        flat = ids.reshape(-1).tolist()
        out = [self._inverse.get(i, self.oov_token) for i in flat]
        if self.mask_token is not None:
            out = [self.mask_token if i == 0 else t for i, t in zip(flat, out)]
        return np.asarray(out, dtype=object if self._token_dtype == "string" else np.int64).reshape(ids.shape)

    def get_config(self):
        has_vocab = bool(self._tokens)
        idf = None
        if self._idf is not None and has_vocab:
            idf = self._idf[:self.vocabulary_size()].tolist()
        return {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token, "mask_token": self.mask_token,
                "output_mode": self.output_mode, "sparse": self.sparse, "pad_to_max_tokens": self.pad_to_max_tokens,
                "idf_weights": idf, "vocabulary": _json_tokens(self.get_vocabulary()) if has_vocab else None,
                "vocabulary_size": self.vocabulary_size()}


def _json_tokens(tokens):
    """Tokens as JSON values (an IntegerLookup's are NumPy integers)."""
    return [t if isinstance(t, str) else int(t) for t in tokens]


def _batches(data):
    """adapt's data as batches: an array, list or tuple is one batch; other iterables yield batches."""
    if isinstance(data, (np.ndarray, list, tuple)) or not hasattr(data, "__iter__") or isinstance(data, (str, bytes)):
        return [data]
    return data


class StringLookup(_IndexLookup):
    """Strings to integer indices through a vocabulary (Keras 3; see the module docstring), or
    back with `invert=True`. Not differentiable.

    Args:
        max_tokens: Maximum size of the vocabulary (including the OOV and mask tokens); `None`: unlimited.
        num_oov_indices: Number of out-of-vocabulary indices (tokens outside the vocabulary are hashed into
            them).
        mask_token: Token that represents masked input (index 0), or `None` for no mask token.
        oov_token: Token returned for out-of-vocabulary indices when `invert=True`.
        vocabulary: A list of tokens (or a path to a file with one per line); `None` to learn it with `adapt`.
        idf_weights: Inverse document frequency weights, one per vocabulary entry (only with
            `output_mode="tf_idf"`).
        invert: If `True`, undo the transformation instead (multiply by the standard deviation and add the
            mean; for lookups, map indices back to tokens).
        output_mode: `"int"` (indices), `"one_hot"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
        pad_to_max_tokens: Whether to pad the multi-hot/count/tf-idf output to `max_tokens` columns even when
            the vocabulary is smaller.
        sparse: Must be `False`: sparse outputs are not supported (Keras has them only on the TensorFlow
            backend).
        encoding: Text encoding used to read string inputs.
        salt: Optional salt (an int or a pair of ints) for a keyed hash, as Keras's SipHash-based salted
            hashing.
    """

    _string_input = True
    _token_dtype = "string"

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1, mask_token: Any = None,
                 oov_token: Any = "[UNK]", vocabulary: Any = None, idf_weights: Any = None, invert: bool = False,
                 output_mode: str = "int", pad_to_max_tokens: bool = False, sparse: bool = False,
                 encoding: str = "utf-8", salt: Any = None, **kwargs: Any) -> None:
        if encoding not in ("utf-8", "utf8", "UTF-8"):
            raise ValueError(f"encoding must be 'utf-8'; received encoding={encoding!r}")
        self.encoding = "utf-8"
        if salt is not None:
            raise NotImplementedError("StringLookup(salt=...) is not supported: out-of-vocabulary strings are "
                                      "hashed with FarmHash Fingerprint64")
        self.salt = None
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                         output_mode, pad_to_max_tokens, sparse, **kwargs)

    def _token(self, name, value):
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if not isinstance(value, str):
            raise TypeError(f"{name} must be None or a string; received {name}={value!r}")
        return str(value)

    def _tokens_of(self, name, values):
        a = _vector(name, values, object)
        try:
            return list(as_strings(self, a).reshape(-1))
        except TypeError:
            raise TypeError(f"{name} must hold strings; received {values!r}") from None

    def _convert_input(self, inputs):
        if self.invert:
            return as_integers(self, inputs)
        return as_strings(self, inputs)

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding, "salt": self.salt}


class IntegerLookup(_IndexLookup):
    """Integers to indices through a vocabulary (Keras 3; see the module docstring), or back with
    `invert=True`. Not differentiable.

    Args:
        max_tokens: Maximum size of the vocabulary (including the OOV and mask tokens); `None`: unlimited.
        num_oov_indices: Number of out-of-vocabulary indices (tokens outside the vocabulary are hashed into
            them).
        mask_token: Token that represents masked input (index 0), or `None` for no mask token.
        oov_token: Token returned for out-of-vocabulary indices when `invert=True`.
        vocabulary: A list of tokens (or a path to a file with one per line); `None` to learn it with `adapt`.
        vocabulary_dtype: Dtype of the vocabulary's tokens (`"int64"` for IntegerLookup).
        idf_weights: Inverse document frequency weights, one per vocabulary entry (only with
            `output_mode="tf_idf"`).
        invert: If `True`, undo the transformation instead (multiply by the standard deviation and add the
            mean; for lookups, map indices back to tokens).
        output_mode: `"int"` (indices), `"one_hot"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
        sparse: Must be `False`: sparse outputs are not supported (Keras has them only on the TensorFlow
            backend).
        pad_to_max_tokens: Whether to pad the multi-hot/count/tf-idf output to `max_tokens` columns even when
            the vocabulary is smaller.
        oov_method: How an out-of-vocabulary integer picks one of several OOV indices: `"floormod"` (its
            value modulo `num_oov_indices`, the default) or `"farmhash"` (a hash, optionally salted).
        salt: Optional salt (an int or a pair of ints) for a keyed hash, as Keras's SipHash-based salted
            hashing.
    """

    _token_dtype = "int64"

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1, mask_token: Any = None,
                 oov_token: Any = -1, vocabulary: Any = None, vocabulary_dtype: str = "int64", idf_weights: Any = None,
                 invert: bool = False, output_mode: str = "int", sparse: bool = False, pad_to_max_tokens: bool = False,
                 oov_method: str = "floormod", salt: Any = None, **kwargs: Any) -> None:
        if vocabulary_dtype != "int64":
            raise ValueError(f"Only vocabulary_dtype='int64' is supported; received vocabulary_dtype="
                             f"{vocabulary_dtype!r}")
        self.vocabulary_dtype = "int64"
        self.oov_method = _choice("oov_method", oov_method, ("floormod", "farmhash"))
        if salt is not None and self.oov_method != "farmhash":
            raise ValueError(f"salt can only be used when oov_method='farmhash'; received oov_method={oov_method!r}")
        self.salt = _salt(salt)
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights, invert,
                         output_mode, pad_to_max_tokens, sparse, **kwargs)

    def _token(self, name, value):
        if value is None:
            return None
        if not _checks.is_int(value):
            raise TypeError(f"{name} must be None or an integer; received {name}={value!r}")
        return int(value)

    def _tokens_of(self, name, values):
        a = _vector(name, values, None)
        if a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.floor(a)).all():
            a = a.astype(np.int64)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name} must hold integers; received dtype {a.dtype}")
        return [int(v) for v in a]

    def _convert_input(self, inputs):
        return as_integers(self, inputs)

    def _oov_slots(self, values):
        if self.num_oov_indices == 1:
            return 0
        if self.oov_method == "floormod":
            return np.mod(values.astype(np.int64), self.num_oov_indices)
        return hash_buckets(values.astype(np.int64), self.num_oov_indices, self.salt)

    def get_config(self):
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype, "oov_method": self.oov_method,
                "salt": self.salt}


def _vector(name, values, dtype):
    try:
        a = np.asarray(values, dtype=dtype) if isinstance(values, (list, tuple)) else np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a 1-D list or array of tokens; {exc}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list or array of tokens; received shape {a.shape}")
    return a


# ----------------------------------------------------------------------------- TextVectorization
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_WHITESPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class TextVectorization(_NotDifferentiable):
    """Text to token ids or token vectors, without TensorFlow (Keras 3; see the module docstring).

    Args:
        max_tokens: the vocabulary's largest size, "" (padding) and "[UNK]" included.
        standardize: "lower_and_strip_punctuation" (default), "lower", "strip_punctuation", None,
            or a callable taking a NumPy array of str and returning one.
        split: "whitespace" (default), "character", None (each input is one token), or a callable
            taking a 1-D array of str and returning one list of tokens per string.
        ngrams: None, an int n (the n-grams of widths 1..n) or a tuple of widths.
        output_mode: "int" (default), "multi_hot", "count" or "tf_idf".
        output_sequence_length: int output only: pad with 0 or truncate every row to this length
            (default: pad to the longest row of the batch).
        pad_to_max_tokens: multi_hot / count / tf_idf vectors of size max_tokens.
        vocabulary: A vocabulary (list) and its IDF weights, instead of `adapt`.
        idf_weights: A vocabulary (list) and its IDF weights, instead of `adapt`.
        sparse: Must be `False`: sparse outputs are not supported (Keras has them only on the TensorFlow
            backend).
        ragged: Keras's ragged tensors; cynet has none, so it must be `False`.
        encoding: Text encoding used to read string inputs.

    Inputs: a batch of strings, shape (batch,) or (batch, 1). Not differentiable.
    """

    _string_input = True

    def __init__(self, max_tokens: int | None = None, standardize: Any = "lower_and_strip_punctuation",
                 split: Any = "whitespace", ngrams: Any = None, output_mode: str = "int",
                 output_sequence_length: int | None = None, pad_to_max_tokens: bool = False, vocabulary: Any = None,
                 idf_weights: Any = None, sparse: bool = False, ragged: bool = False, encoding: str = "utf-8",
                 **kwargs: Any) -> None:
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(**kwargs)
        del vocabulary_size
        if standardize is not None and not callable(standardize):
            _choice("standardize", standardize, ("lower_and_strip_punctuation", "lower", "strip_punctuation"))
        if split is not None and not callable(split):
            _choice("split", split, ("whitespace", "character"))
        self.standardize = standardize
        self.split = split
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode == "tf-idf":
            output_mode = "tf_idf"
        self.output_mode = _choice("output_mode", output_mode, ("int", "multi_hot", "count", "tf_idf"))
        if ngrams is None:
            self._ngrams = None
        elif _checks.is_int(ngrams) and ngrams >= 1:
            self._ngrams = tuple(range(1, int(ngrams) + 1))
        elif isinstance(ngrams, (tuple, list)) and ngrams and all(_checks.is_int(n) and n >= 1 for n in ngrams):
            self._ngrams = tuple(int(n) for n in ngrams)
        else:
            raise ValueError(f"ngrams must be None, a positive integer, or a tuple of positive integers; received "
                             f"ngrams={ngrams!r}")
        self.ngrams = list(self._ngrams or ()) if isinstance(ngrams, (tuple, list)) else ngrams
        self.output_sequence_length = _optional_int("output_sequence_length", output_sequence_length, 1)
        if self.output_mode != "int" and self.output_sequence_length is not None:
            raise ValueError(f"output_sequence_length must not be set if output_mode is not 'int'; received "
                             f"output_sequence_length={output_sequence_length!r}")
        if not isinstance(ragged, (bool, np.bool_)):
            raise TypeError(f"ragged must be a bool; received ragged={ragged!r}")
        if ragged:
            raise ValueError("ragged=True is not supported (Keras supports it only with the TensorFlow backend)")
        self.ragged = False
        if encoding not in ("utf-8", "utf8", "UTF-8"):
            raise ValueError(f"encoding must be 'utf-8'; received encoding={encoding!r}")
        self.encoding = "utf-8"
        self._lookup_layer = StringLookup(max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
                                    pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=self.output_mode,
                                    sparse=sparse, dtype=self.dtype, name=f"{self.name}_lookup")

    # ------------------------------------------------------------------ vocabulary
    @property
    def max_tokens(self):
        """The maximum vocabulary size given at construction."""
        return self._lookup_layer.max_tokens

    def get_vocabulary(self, include_special_tokens=True):
        """The current vocabulary as a list of tokens, index order.

        Args:
            include_special_tokens: Whether the returned vocabulary (or its size) includes the mask and OOV
                tokens.
        """
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        """The size of the current vocabulary (including the mask and OOV tokens)."""
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Replace the vocabulary (and, for `"tf_idf"`, the idf weights).

        Args:
            vocabulary: A list of tokens (or a path to a file with one per line); `None` to learn it with
                `adapt`.
            idf_weights: Inverse document frequency weights, one per vocabulary entry (only with
                `output_mode="tf_idf"`).
        """
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    def adapt(self, data, batch_size=None, steps=None):
        """Build the vocabulary (and, for tf_idf, the document frequencies) from `data`: an array
        or list of strings, or an iterable of batches of them.

        Args:
            data: Data to compute the layer's state from (an array, or an iterable of batches).
            batch_size: Fixed batch size of the input, or `None`.
            steps: Number of batches to draw from `data` (`None`: all).
        """
        if self._lookup_layer._has_input_vocabulary:
            raise ValueError(f"{self._who()}: cannot adapt after setting a static vocabulary via the vocabulary "
                             f"argument or set_vocabulary()")
        counts, documents, n_docs = collections.Counter(), collections.Counter(), 0
        whole = isinstance(data, (np.ndarray, list, tuple))
        for i, batch in enumerate(_batches(data)):
            if steps is not None and i >= steps:
                break
            x = as_strings(self, batch) if not isinstance(batch, str) else np.asarray([batch], dtype=object)
            if whole and x.ndim == 1 and self.split is None:
                x = x[:, None]
            for row in self._token_rows(x):
                counts.update(row)
                documents.update(set(row))
                n_docs += 1
        self._lookup_layer._finalize(counts, documents, n_docs)

    # ------------------------------------------------------------------ text processing
    def _standardized(self, x):
        if callable(self.standardize):
            out = np.asarray(self.standardize(x.astype(str)))
            if out.shape != x.shape:
                raise ValueError(f"{self._who()}: the standardize function must return an array of the shape it was "
                                 f"given {x.shape}; received shape {out.shape}")
            return as_strings(self, out) if out.ndim else out
        if self.standardize is None:
            return x
        lower = self.standardize in ("lower_and_strip_punctuation", "lower")
        strip = self.standardize in ("lower_and_strip_punctuation", "strip_punctuation")
        out = np.empty(x.shape, dtype=object)
        dst, src = out.reshape(-1), x.reshape(-1)
        for i, s in enumerate(src.tolist()):
            if lower:
                s = s.translate(_ASCII_LOWER)
            if strip:
                s = _PUNCTUATION.sub("", s)
            dst[i] = s
        return out

    def _split_one(self, s):
        if self.split == "whitespace":
            return [t for t in _WHITESPACE.split(s) if t]
        return list(s)

    def _token_rows(self, x):
        """One list of tokens per input string (or per row, without split)."""
        x = self._standardized(x)
        if self.split is None:
            rows = [list(row.reshape(-1)) for row in (x if x.ndim > 1 else x[:, None])]
        else:
            if x.ndim > 1:
                if x.shape[-1] != 1:
                    raise ValueError(f"{self._who()}: when split is set, inputs must be strings of shape (batch,) or "
                                     f"(batch, 1); received shape {x.shape}")
                x = x.reshape(x.shape[:-1])
            if x.ndim != 1:
                raise ValueError(f"{self._who()}: inputs must be a batch of strings, (batch,) or (batch, 1); "
                                 f"received shape {x.shape + (1,)}")
            if callable(self.split):
                rows = [list(r) for r in self.split(x.astype(str))]
                if len(rows) != len(x) or not all(isinstance(t, str) for r in rows for t in r):
                    raise ValueError(f"{self._who()}: the split function must return one list of strings per input "
                                     f"string ({len(x)})")
            else:
                rows = [self._split_one(s) for s in x.tolist()]
        if self._ngrams is not None:
            rows = [_ngrams(r, self._ngrams) for r in rows]
        return rows

    # ------------------------------------------------------------------ call
    def _convert_input(self, inputs):
        return as_strings(self, inputs)

    def _check_input(self, x):
        Layer._check_input(self, x)
        if self.output_mode != "int" and not self._lookup_layer.pad_to_max_tokens and not self._lookup_layer._tokens:
            raise RuntimeError(f"{self._who()}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False, "
                               f"the vocabulary must be set before calling the layer: pass vocabulary= or call "
                               f"adapt()")

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        return (input_shape[0], self._lookup_layer._depth())

    def _output_dtype(self):
        return "int64" if self.output_mode == "int" else self.dtype.name

    def _forward(self, ctx, inputs, training):
        rows = self._token_rows(inputs)
        if self.output_mode == "int":
            length = self.output_sequence_length
            if length is None:
                length = max((len(r) for r in rows), default=0)
            out = np.zeros((len(rows), length), dtype=np.int64)
            for i, r in enumerate(rows):
                r = r[:length]
                if r:
                    out[i, :len(r)] = self._lookup_layer._lookup(np.asarray(r, dtype=object))
            return out
        width = max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            if r:
                ids[i, :len(r)] = self._lookup_layer._lookup(np.asarray(r, dtype=object))
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        weights = None
        if self.output_mode == "tf_idf":
            if self._lookup_layer._idf is None:
                raise ValueError(f"{self._who()}: output_mode='tf_idf' needs idf_weights (adapt the layer or pass "
                                 f"vocabulary= and idf_weights=)")
            weights = self._lookup_layer._idf
        return encode(ids, mode, self._lookup_layer._depth(), self.dtype, weights)

    def get_config(self):
        from .lambda_layer import _serialize_function
        lookup = self._lookup_layer.get_config()
        return {**super().get_config(), "max_tokens": self.max_tokens,
                "standardize": _serialize_function(self.standardize) if callable(self.standardize)
                else self.standardize,
                "split": _serialize_function(self.split) if callable(self.split) else self.split,
                "ngrams": self.ngrams, "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length,
                "pad_to_max_tokens": self._lookup_layer.pad_to_max_tokens, "sparse": False, "ragged": False,
                "vocabulary": lookup["vocabulary"], "idf_weights": lookup["idf_weights"], "encoding": self.encoding,
                "vocabulary_size": self.vocabulary_size()}

    @classmethod
    def from_config(cls, config):
        from .lambda_layer import _deserialize_function
        config = dict(config)
        for key in ("standardize", "split"):
            if isinstance(config.get(key), dict):
                config[key] = _deserialize_function(config[key], key, None)
        return cls(**config)


def _ngrams(tokens, widths):
    """tf.strings.ngrams(tokens, widths, separator=" "): every n-gram of each width, widths in turn."""
    out = []
    for n in widths:
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out

