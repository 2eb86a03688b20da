"""Character-level text for RNN/LSTM/GRU language models: files, vocabulary, windows, sampling.

A typical run (Keras's character-level LSTM example, on cynet):

    text = text_lib.tiny_shakespeare()                      # or load_text(path)
    vocab = text_lib.CharVocabulary.from_text(text)
    x, y = text_lib.char_windows(vocab.encode(text), seq_length=40, step=3)
    model = Sequential([Input((40,)), layers.Embedding(vocab.size, 32), layers.LSTM(128),
                        layers.Dense(vocab.size, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y)
    print(text_lib.sample(model, vocab, seed_text=text[:40], length=200, temperature=0.5))

Text files are looked for in `path=`, then `$CYNET_DATA_DIR/text`, `$CYNET_DATA_DIR` and
`~/.cynet/datasets/text`; Tiny Shakespeare alone is downloaded (md5-checked) when missing.
"""
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import to_categorical
from ..utils.rng import make_rng
from . import _files
from ._files import DatasetNotFoundError  # noqa: F401
from .._typing import ArrayLike

TINY_SHAKESPEARE = "tinyshakespeare.txt"
#: Files `find_text_file` may download: name -> (URLs, md5). Tiny Shakespeare is Karpathy's char-rnn
#: `input.txt` (1,115,394 characters).
KNOWN_FILES = {
    TINY_SHAKESPEARE: (("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
                       "6fb458f1232090904fb40fe944165e91"),
}
_MAX_TEXT_BYTES = 1 << 26


class CharVocabulary:
    """A fixed mapping between characters and integer ids 0..size-1.

    `CharVocabulary.from_text(text)` takes the distinct characters of `text` in sorted (code point)
    order, so the same text always gives the same ids. `CharVocabulary(chars)` keeps the order given.

    Args:
        chars: a string (or iterable of one-character strings) of distinct characters.
    """

    def __init__(self, chars: Any) -> None:
        if isinstance(chars, str):
            chars = list(chars)
        else:
            chars = list(chars)
            bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
            if bad:
                raise TypeError(f"chars must hold one-character strings; received {bad[0]!r}")
        if not chars:
            raise ValueError("chars must not be empty")
        if len(set(chars)) != len(chars):
            dup = sorted({c for c in chars if chars.count(c) > 1})
            raise ValueError(f"chars must be distinct; received duplicates {dup!r}")
        self._chars = "".join(chars)
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._order = np.argsort(codes, kind="stable").astype(np.int32)
        self._sorted_codes = codes[self._order]
        self._codes = codes.astype(np.uint32)

    @classmethod
    def from_text(cls, text: str) -> Any:
        """The vocabulary of the distinct characters of `text`, sorted by code point.

        Args:
            text: A string.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; received {type(text).__name__}")
        if not text:
            raise ValueError("text must not be empty")
        return cls(sorted(set(text)))

    @property
    def size(self) -> Any:
        """Number of characters (the `input_dim` of an Embedding, the units of the output Dense)."""
        return len(self._chars)

    def __len__(self):
        return len(self._chars)

    @property
    def chars(self) -> Any:
        """The characters as one string; `chars[i]` has id i."""
        return self._chars

    @property
    def char_to_index(self) -> Any:
        """Dict from each character to its id."""
        return {c: i for i, c in enumerate(self._chars)}

    @property
    def index_to_char(self) -> Any:
        """Dict from each id to its character."""
        return dict(enumerate(self._chars))

    def encode(self, text: str) -> Any:
        """Ids of the characters of `text`: int32 array of shape (len(text),).

        Raises ValueError naming the characters that are not in the vocabulary.

        Args:
            text: A string.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; received {type(text).__name__}")
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
        pos = np.searchsorted(self._sorted_codes, cp)
        pos_c = np.minimum(pos, len(self._sorted_codes) - 1)
        ok = self._sorted_codes[pos_c] == cp
        if not ok.all():
            unknown = sorted({chr(c) for c in cp[~ok][:1000]})
            raise ValueError(f"text holds characters that are not in the vocabulary: {unknown[:20]!r}")
        return self._order[pos_c].astype(np.int32)

    def decode(self, ids: Any) -> Any:
        """The string of the ids in `ids` (a 1-D sequence or array of ints in [0, size)).

        Args:
            ids: Sequence of integer character indices.
        """
        a = np.asarray(ids)
        if a.size == 0:
            return ""
        if a.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers; received dtype {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"ids must be 1-D; received shape {a.shape}")
        if a.min() < 0 or a.max() >= self.size:
            raise ValueError(f"ids must be in [0, {self.size}); received values from {a.min()} to {a.max()}")
        return self._codes[a].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")

    def get_config(self) -> dict[str, Any]:
        """A JSON-friendly dict; `CharVocabulary.from_config(v.get_config()) == v`."""
        return {"chars": self._chars}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CharVocabulary":
        """An instance built from `get_config()`'s dictionary.

        Args:
            config: The dictionary `get_config()` returned.
        """
        if not isinstance(config, dict) or not isinstance(config.get("chars"), str):
            raise ValueError(f"config must be a dict with a 'chars' string; received {config!r}")
        return cls(config["chars"])

    def __eq__(self, other):
        return isinstance(other, CharVocabulary) and other._chars == self._chars

    def __hash__(self):
        return hash(self._chars)

    def __repr__(self):
        return f"CharVocabulary(size={self.size}, chars={self._chars!r})"


def load_text(path: str, encoding: str = "utf-8") -> Any:
    """The contents of a text file as a str (decoded strictly; line endings kept exactly).

    Args:
        path: Directory or file to read from; `None` searches `$CYNET_DATA_DIR` and `~/.cynet/datasets`.
        encoding: Text encoding of the file.
    """
    with open(path, "rb") as f:
        return f.read().decode(encoding)


def find_text_file(filename: str, path: str | None = None, *, download: bool = True) -> Any:
    """Path of the text file `filename`.

    Looks in `path` (a directory; or the file itself), then `$CYNET_DATA_DIR/text`,
    `$CYNET_DATA_DIR` and `~/.cynet/datasets/text`. Files in `KNOWN_FILES` (Tiny Shakespeare) are
    downloaded into the last one, md5-checked, when absent and `download` is true; any other file
    must already be on disk. Raises DatasetNotFoundError listing the places searched.

    Args:
        filename: Plain file name (no directory part).
        path: Directory or file to read from; `None` searches `$CYNET_DATA_DIR` and `~/.cynet/datasets`.
        download: Whether to download missing files (md5-checked).
    """
    if not isinstance(filename, str) or not filename or "/" in filename or "\\" in filename \
            or filename in (".", ".."):
        raise ValueError(f"filename must be a plain file name; received filename={filename!r}")
    if isinstance(path, (str, os.PathLike)) and Path(path).expanduser().is_file():
        return Path(path).expanduser()
    urls, md5 = KNOWN_FILES.get(filename, ((), None))
    found = _files.locate("text", "Text", (filename,), {filename: md5} if md5 else {}, {filename: urls},
                          path=path, download_missing=download, max_bytes=_MAX_TEXT_BYTES)
    return found[filename]


def tiny_shakespeare(path: str | None = None, *, download: bool = True) -> Any:
    """Tiny Shakespeare (1,115,394 characters) as a str; found or downloaded as in `find_text_file`.

    Args:
        path: Directory or file to read from; `None` searches `$CYNET_DATA_DIR` and `~/.cynet/datasets`.
        download: Whether to download missing files (md5-checked).
    """
    return load_text(find_text_file(TINY_SHAKESPEARE, path, download=download))


def char_windows(encoded: Any, seq_length: int, step: int = 1, many_to_many: bool = False) -> Any:
    """Cut an encoded text into training windows for next-character prediction.

    Window i starts at s = i * step and holds `encoded[s:s+T]` (T = seq_length). Its target is
    the next character `encoded[s+T]` (many-to-one; for `LSTM(...)` then `Dense(vocab)`), or with
    `many_to_many=True` the window shifted by one, `encoded[s+1:s+T+1]` (for `return_sequences=True`).
    Every window has a full target, so n = (len(encoded) - T - 1) // step + 1.

    Args:
        encoded: 1-D integer array (e.g. `CharVocabulary.encode(text)`).
        seq_length: T >= 1, with T < len(encoded).
        step: stride between window starts (>= 1); a larger step gives fewer, less redundant windows.
        many_to_many: targets per time step instead of one per window.

    Returns:
        `(x, y)`: x (n, T) and y (n,) or (n, T), C-contiguous copies of `encoded`'s dtype.
    """
    e = np.asarray(encoded)
    if e.dtype.kind not in "iu":
        raise TypeError(f"encoded must be an integer array; received dtype {e.dtype}")
    if e.ndim != 1:
        raise ValueError(f"encoded must be 1-D; received shape {e.shape}")
    for arg, value in (("seq_length", seq_length), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{arg} must be a positive int; received {arg}={value!r}")
    if not isinstance(many_to_many, bool):
        raise TypeError(f"many_to_many must be True or False; received many_to_many={many_to_many!r}")
    T, step = int(seq_length), int(step)
    if len(e) < T + 1:
        raise ValueError(f"encoded has {len(e)} characters; seq_length={T} needs at least {T + 1} "
                         "(a window plus its target)")
    n = (len(e) - T - 1) // step + 1
    windows = np.lib.stride_tricks.sliding_window_view(e, T + 1)[: (n - 1) * step + 1 : step]
    x = np.ascontiguousarray(windows[:, :T])
    y = np.ascontiguousarray(windows[:, 1:] if many_to_many else windows[:, T])
    return x, y


def one_hot(x: Any, vocab_size: Any) -> Any:
    """One-hot encode ids (any shape) to float32 (..., vocab_size), via `cynet.utils.to_categorical`.

    For models that take characters as vectors (`LSTM` directly on (n, T, vocab)) instead of an
    `Embedding` on ids.

    Args:
        x: Input array.
        vocab_size: Vocabulary size (an int or a CharVocabulary).
    """
    if isinstance(vocab_size, CharVocabulary):
        vocab_size = vocab_size.size
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int; received vocab_size={vocab_size!r}")
    return to_categorical(x, num_classes=int(vocab_size))


def apply_temperature(probs: ArrayLike, temperature: float) -> Any:
    """Re-weight a probability vector: p**(1/t) / sum(p**(1/t)) (float64); t = 0 puts all mass on argmax.

    t < 1 sharpens the distribution, t > 1 flattens it, t = 1 only renormalises.

    Args:
        probs: 1-D probability vector.
        temperature: Sampling temperature (>= 0; 0 is greedy).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"probs must be a non-empty 1-D vector; received shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("probs must be finite, non-negative and not all zero (pass model outputs "
                         "after softmax, or from_logits=True to sample)")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)) \
            or not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0; received temperature={temperature!r}")
    if temperature == 0:
        out = np.zeros_like(p)
        out[np.argmax(p)] = 1.0
        return out
    with np.errstate(divide="ignore"):
        logp = np.log(p) / float(temperature)
    logp -= logp.max()
    w = np.exp(logp)
    return w / w.sum()


def _draw(probs, rng):
    """Inverse-CDF draw: the first index whose cumulative probability exceeds u ~ U[0, 1)."""
    cdf = np.cumsum(probs)
    u = float(rng.random()) * cdf[-1]
    k = int(np.searchsorted(cdf, u, side="right"))
    return k if k < len(probs) else int(np.flatnonzero(probs)[-1])  # u * total rounded up to total


def sample(model: Any, vocab: Any, seed_text: str, length: int, temperature: float = 1.0, rng: Any = None,
           one_hot: bool = False, seq_length: int | None = None, from_logits: bool = False) -> Any:
    """Generate `length` characters from a trained character-level model.

    At each step the model sees the last T characters (T = `seq_length`, default len(seed_text))
    as ids of shape (1, T), or one-hot (1, T, vocab.size) when `one_hot=True`, through
    `model.predict(x, verbose=0)`. Its output for the last position ((1, V) or (1, T, V)) is read as
    probabilities (softmax; `from_logits=True` applies one), re-weighted by `apply_temperature`
    and sampled; temperature 0 is greedy (argmax) decoding.

    Args:
        model: anything with `predict(x, verbose=0)`, e.g. a cynet Sequential.
        vocab: the `CharVocabulary` the model was trained with.
        seed_text: the prompt; at least T characters, all in `vocab`.
        length: number of characters to generate (>= 0).
        temperature: >= 0.
        rng: None (cynet's global generator, see `cynet.utils.set_random_seed`), an int seed, or a
            numpy Generator.
        one_hot: Feed the model one-hot vectors instead of ids.
        seq_length: Number of past characters the model sees (default `len(seed_text)`).
        from_logits: Whether `y_pred` holds logits (unnormalized scores) instead of probabilities.

    Returns:
        The generated characters (without the seed) as a str.
    """
    if not isinstance(vocab, CharVocabulary):
        raise TypeError(f"vocab must be a CharVocabulary; received {type(vocab).__name__}")
    if not hasattr(model, "predict"):
        raise TypeError(f"model must have a predict method; received {type(model).__name__}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length must be a non-negative int; received length={length!r}")
    apply_temperature(np.ones(1), temperature)  # validates temperature
    if not isinstance(seed_text, str) or not seed_text:
        raise ValueError(f"seed_text must be a non-empty str; received seed_text={seed_text!r}")
    T = len(seed_text) if seq_length is None else seq_length
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"seq_length must be None or a positive int; received seq_length={seq_length!r}")
    if len(seed_text) < T:
        raise ValueError(f"seed_text has {len(seed_text)} characters; seq_length={T} needs at least {T}")
    if rng is None or isinstance(rng, np.random.Generator) or (
            isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0):
        rng = make_rng(rng)
    elif not callable(getattr(rng, "random", None)):
        raise TypeError(f"rng must be None, a non-negative int seed or a numpy Generator; received rng={rng!r}")
    context = list(vocab.encode(seed_text[-T:]))
    out = []
    for _ in range(int(length)):
        ids = np.asarray(context[-T:], dtype=np.int32)[None, :]
        x = to_categorical(ids, num_classes=vocab.size) if one_hot else ids
        pred = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
        if pred.ndim == 3:
            pred = pred[:, -1]
        if pred.shape != (1, vocab.size):
            raise ValueError(f"model.predict returned shape {pred.shape}; expected (1, {vocab.size}) or "
                             f"(1, T, {vocab.size}) for a vocabulary of {vocab.size} characters")
        p = pred[0]
        if from_logits:
            p = np.exp(p - p.max())
        p = apply_temperature(p, temperature)
        k = int(np.argmax(p)) if temperature == 0 else _draw(p, rng)
        context.append(k)
        out.append(k)
    return vocab.decode(np.asarray(out, dtype=np.int64))
