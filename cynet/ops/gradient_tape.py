"""cynet.GradientTape: the tape of a custom training loop, as tf.GradientTape is used with Keras.

    with cynet.GradientTape() as tape:
        logits = model(x, training=True)
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

Inside the block, layer calls and cynet.ops record on the tape (per thread); `gradient` walks it back
from the target. A source the target does not depend on gets None, as in TensorFlow.
"""
from typing import Any

import numpy as np

from .. import tape as _tape
from ..variables import Variable
from . import core as _core
from .core import plain


class GradientTape:
    """Record layer calls and ops in a block, then differentiate a target with respect to sources.

    Args:
        persistent: Allow several `gradient` calls (the records are kept until the tape is deleted).
        watch_accessed_variables: Accepted for TensorFlow compatibility; every trainable variable a
            recorded call reads is watched.
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self.persistent = bool(persistent)
        self.watch_accessed_variables = bool(watch_accessed_variables)
        self._tape = None
        self._token = None
        self._user_token = None
        self._used = False

    def __enter__(self):
        if self._token is not None:
            raise RuntimeError("this GradientTape is already recording")
        self._tape = _tape.Tape()
        self._token = _tape._active.set(self._tape)
        self._user_token = _core._in_user.set(True)   # user code: layer outputs are Tensors, so arithmetic records
        return self

    def __exit__(self, *exc):
        _core._in_user.reset(self._user_token)
        _tape._active.reset(self._token)
        self._token = None
        return False

    def watch(self, tensor: Any) -> None:
        """Accepted for TensorFlow compatibility: any array the recorded calls took can be a source.

        Args:
            tensor: Ignored.
        """

    def gradient(self, target: Any, sources: Any, output_gradients: Any = None) -> Any:
        """The gradient of `target` (a scalar or array computed in the block; a list sums the targets)
        with respect to each of `sources` (Variables or arrays the recorded calls took), in the same
        structure; None for a source the target does not depend on.

        Args:
            target: A scalar or array computed in the block, or a list of them (their gradients are summed).
            sources: A Variable or an array the recorded calls took, or a list of them.
            output_gradients: Optional seed gradient per target (the gradient of some outer loss with respect
                to the target); ones when `None`.
        """
        if self._tape is None:
            raise RuntimeError("GradientTape.gradient: the tape recorded nothing (use it as `with GradientTape() "
                               "as tape:` around the computation)")
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a non-persistent tape (pass "
                               "persistent=True to call it more than once)")
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        if output_gradients is None:
            seeds = [(t, np.ones(np.shape(t), dtype=_dtype(t))) for t in targets]
        else:
            given = list(output_gradients) if isinstance(output_gradients, (list, tuple)) else [output_gradients]
            if len(given) != len(targets):
                raise ValueError(f"output_gradients must have one entry per target ({len(targets)}); received "
                                 f"{len(given)}")
            seeds = [(t, np.asarray(plain(g), dtype=_dtype(t))) for t, g in zip(targets, given)]
        for t, _ in seeds:
            if not isinstance(t, np.ndarray):
                raise TypeError(f"GradientTape.gradient: target must be an array computed in the block; received "
                                f"{type(t).__name__}")
        single = not isinstance(sources, (list, tuple))
        flat = [sources] if single else list(sources)
        arrays = [s for s in flat if not isinstance(s, Variable)]
        self._used = True
        with _tape.recording(_tape.NO_RECORD):
            found = self._tape.backward(seeds, arrays, warn=False, regularization=False)
        by_id = dict(zip(map(id, arrays), found))
        out = [s.grad if isinstance(s, Variable) else by_id[id(s)] for s in flat]
        if not self.persistent:
            self._tape = _tape.Tape()
        return out[0] if single else out


def _dtype(t):
    dt = np.asarray(t).dtype
    return dt if dt.kind == "f" else np.float32
