"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.).

An IDX file is a 4-byte magic number `00 00 TT ND` (TT: element type, ND: number of dimensions),
then ND big-endian uint32 sizes, then the elements in C order, big-endian:

    0x08 uint8   0x09 int8   0x0B int16   0x0C int32   0x0D float32   0x0E float64

`read_idx` checks all of it before it allocates anything: the magic, the type code, ND, that the
shape can exist as a NumPy array (the product of the non-zero sizes times the item size fits an
intp: `(0, 2**32-1, 2**32-1)` is refused, though it holds no element), and that the payload holds
exactly prod(sizes) * itemsize bytes. A damaged, truncated, padded or hostile file raises
ValueError naming the file and what is wrong; a header that declares gigabytes over a tiny payload
costs no memory. A path must name a regular file (or a link to one): a directory, FIFO, socket or
device is refused before it is opened, so reading never blocks (`cynet.utils._files`).
"""
import gzip
import io
import math
import os
import struct
import zlib
from typing import Any

import numpy as np

from ..utils._files import open_regular_file
from .._typing import ArrayLike

#: IDX type code -> big-endian NumPy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
#: Largest number of dimensions accepted.
MAX_NDIM = 4
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
#: Largest byte count of an array NumPy can describe (its intp), zero-sized arrays included.
_MAX_ARRAY_BYTES = int(np.iinfo(np.intp).max)


class _Prefixed(io.RawIOBase):
    """A read-only stream that yields `head` and then the rest of `f` (to put sniffed bytes back)."""

    def __init__(self, head, f):
        self._head, self._f = head, f

    def readable(self):
        return True

    def readinto(self, b):
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(b))
        b[:len(data)] = data
        return len(data)


def _read_exact(f, n, what, name):
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{name}: truncated IDX file: the {what} needs {n} bytes, found {len(data)}")
    return data


def _read_capped(f, n):
    """Read at most n bytes in chunks, so memory grows with the bytes that exist, not with n."""
    buf = bytearray()
    while len(buf) < n:
        block = f.read(min(_CHUNK, n - len(buf)))
        if not block:
            break
        buf += block
    return buf


def _parse(f, name, remaining, max_bytes):
    """Read an IDX stream; `remaining` is the byte count after the current position when known."""
    magic = _read_exact(f, 4, "magic number", name)
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(f"{name}: not an IDX file: the magic number must start with two zero bytes; "
                         f"found {magic.hex()}")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_NDIM:
        raise ValueError(f"{name}: IDX header declares {ndim} dimensions; expected 1 to {MAX_NDIM}")
    shape = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, "dimension sizes", name))
    dtype = IDX_DTYPES[code]
    # NumPy refuses (with a message that names no file) any shape whose non-zero sizes multiply
    # past its intp, even when another size is 0; so check that before anything is read.
    extent = math.prod(d for d in shape if d) * dtype.itemsize  # Python ints: no overflow
    if extent > _MAX_ARRAY_BYTES:
        raise ValueError(f"{name}: IDX header declares shape {shape} of {dtype.name}, too large for an "
                         f"array: its non-zero sizes span {extent} bytes, more than the {_MAX_ARRAY_BYTES} "
                         "an array can describe")
    nbytes = math.prod(shape) * dtype.itemsize
    if max_bytes is not None and nbytes > max_bytes:
        raise ValueError(f"{name}: IDX header declares shape {shape} ({nbytes} bytes), "
                         f"more than max_bytes={max_bytes}")
    if remaining is not None:
        remaining -= 4 + 4 * ndim
        if remaining != nbytes:
            kind = "truncated" if remaining < nbytes else "has trailing bytes"
            raise ValueError(f"{name}: IDX file {kind}: shape {shape} of {dtype.name} needs {nbytes} "
                             f"payload bytes, the file holds {remaining}")
        buf = bytearray(nbytes)
        view, got = memoryview(buf), 0
        while got < nbytes:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
        if got != nbytes:  # the file shrank while we read it
            raise ValueError(f"{name}: truncated IDX file: expected {nbytes} payload bytes, read {got}")
    else:
        try:
            buf = _read_capped(f, nbytes + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ValueError(f"{name}: damaged gzip stream: {e}") from None
        if len(buf) != nbytes:
            kind = "truncated" if len(buf) < nbytes else "has trailing bytes"
            extra = "" if len(buf) < nbytes else " or more"
            raise ValueError(f"{name}: IDX file {kind}: shape {shape} of {dtype.name} needs {nbytes} "
                             f"payload bytes, the file holds {len(buf)}{extra}")
    array = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if dtype.itemsize > 1:
        return array.astype(dtype.newbyteorder("="))
    return array.view(dtype.newbyteorder("="))


def _remaining(f):
    """Bytes left in a seekable uncompressed stream, or None when it cannot be told cheaply."""
    try:
        if not f.seekable():
            return None
        pos = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None


def _read_stream(f, name, max_bytes):
    head = f.read(2)
    if not isinstance(head, bytes):
        raise TypeError(f"{name}: the file object must be opened in binary mode")
    if head == _GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BufferedReader(_Prefixed(head, f)), mode="rb") as g:
                return _parse(g, name, None, max_bytes)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise ValueError(f"{name}: damaged gzip stream: {e}") from None
    remaining = _remaining(f)
    return _parse(io.BufferedReader(_Prefixed(head, f)), name, None if remaining is None else remaining + len(head),
                  max_bytes)


def read_idx(source: Any, *, max_bytes: int | None = None) -> Any:
    """Read an IDX file into a NumPy array (native byte order).

    Args:
        source: a path (str or os.PathLike) or a binary file object. Gzip-compressed data is
            recognised by its content (the `1f 8b` magic), so `.gz` and raw files both work.
        max_bytes: optional limit on the payload size the header may declare (ValueError when
            exceeded): a guard against decompression bombs when reading untrusted `.gz` files.

    Returns:
        An ndarray of shape `dims` and dtype uint8, int8, int16, int32, float32 or float64.

    Raises:
        ValueError: bad magic number, unknown type code, 0 or more than `MAX_NDIM` dimensions,
            a shape too large for an array, a payload shorter or longer than the header
            declares, or a damaged gzip stream; the message names the file.
        cynet.utils._files.NotARegularFileError: (a ValueError and an OSError) the path names a
            FIFO, socket or device; `DirectoryNotFileError`, also an IsADirectoryError, for a
            directory. Nothing is opened, so a FIFO never blocks.
        FileNotFoundError, PermissionError: as `open` raises them.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
        raise ValueError(f"max_bytes must be None or a non-negative int; received max_bytes={max_bytes!r}")
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open_regular_file(source, "an IDX file") as f:
            head = f.read(2)
            f.seek(0)
            if head == _GZIP_MAGIC:
                try:
                    with gzip.GzipFile(fileobj=f, mode="rb") as g:
                        return _parse(g, name, None, max_bytes)
                except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                    raise ValueError(f"{name}: damaged gzip stream: {e}") from None
            # A size of 0 is told by empty files and by /proc-like files alike: then read as a stream.
            return _parse(f, name, os.fstat(f.fileno()).st_size or None, max_bytes)
    if hasattr(source, "read"):
        return _read_stream(source, getattr(source, "name", "<file object>"), max_bytes)
    raise TypeError(f"source must be a path or a binary file object; received {type(source).__name__}")


def write_idx(target: Any, array: ArrayLike, *, compress: bool | None = None) -> Any:
    """Write `array` as an IDX file (the inverse of `read_idx`).

    Args:
        target: a path or a binary file object.
        array: array-like of dtype uint8, int8, int16, int32, float32 or float64, with 1 to
            `MAX_NDIM` dimensions, each smaller than 2**32.
        compress: gzip the output; None means "when the path ends in .gz" (False for file objects).
    """
    a = np.asarray(array)
    code = _CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"array dtype must be one of uint8, int8, int16, int32, float32, float64; "
                        f"received {a.dtype}")
    if not 1 <= a.ndim <= MAX_NDIM:
        raise ValueError(f"array must have 1 to {MAX_NDIM} dimensions; received shape {a.shape}")
    if any(d >= 2**32 for d in a.shape):
        raise ValueError(f"IDX dimensions must be < 2**32; received shape {a.shape}")
    payload = struct.pack(f">BBBB{a.ndim}I", 0, 0, code, a.ndim, *a.shape) + \
        np.ascontiguousarray(a, dtype=IDX_DTYPES[code]).tobytes()
    if isinstance(target, (str, os.PathLike)):
        if compress is None:
            compress = os.fspath(target).endswith(".gz")
        with open(target, "wb") as f:
            f.write(gzip.compress(payload, mtime=0) if compress else payload)
    elif hasattr(target, "write"):
        target.write(gzip.compress(payload, mtime=0) if compress else payload)
    else:
        raise TypeError(f"target must be a path or a binary file object; received {type(target).__name__}")
