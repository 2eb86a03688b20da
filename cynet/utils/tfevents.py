"""TensorBoard event files, written without TensorFlow (for `cynet.callbacks.TensorBoard`).

An event file is a sequence of TFRecords (length, masked CRC-32C of the length, the data, masked
CRC-32C of the data), each holding one serialized `Event` protocol buffer: the first one names the
file version, the others carry a `Summary` of scalar values (`simple_value`, which TensorBoard's
scalars dashboard reads) or histograms (`HistogramProto`). The few protobuf fields needed are
encoded here by hand; `read_events` decodes what this module writes (and the same fields of
TensorFlow's files), so files can be checked without TensorBoard installed.
"""
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["EventFileWriter", "read_events"]

# ------------------------------------------------------------------ CRC-32C (Castagnoli), masked
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)
del _i, _c


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ------------------------------------------------------------------ protobuf wire format (the fields used)
def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1   # int64 fields: two's complement, as protobuf encodes negatives
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _double_field(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _float_field(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def _event(wall_time: float, step: int, **payload: bytes) -> bytes:
    """An Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5."""
    data = _double_field(1, wall_time) + _key(2, 0) + _varint(int(step))
    if "file_version" in payload:
        data += _bytes_field(3, payload["file_version"])
    if "summary" in payload:
        data += _bytes_field(5, payload["summary"])
    return data


def _scalar_value(tag: str, value: float) -> bytes:
    """Summary.Value: tag = 1, simple_value = 2 (float)."""
    return _bytes_field(1, tag.encode("utf-8")) + _float_field(2, float(value))


def _histogram_value(tag: str, values: np.ndarray, bins: int) -> bytes:
    """Summary.Value: tag = 1, histo = 5 (HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5,
    bucket_limit 6 and bucket 7, packed doubles), the counts over `bins` equal-width buckets."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        lo = hi = 0.0
        limits, counts = np.array([0.0]), np.array([0.0])
    else:
        lo, hi = float(v.min()), float(v.max())
        if lo == hi:
            limits, counts = np.array([hi]), np.array([float(v.size)])
        else:
            counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
            limits, counts = edges[1:], counts.astype(np.float64)
    histo = (_double_field(1, lo) + _double_field(2, hi) + _double_field(3, float(v.size))
             + _double_field(4, float(v.sum())) + _double_field(5, float(np.dot(v, v)))
             + _bytes_field(6, limits.astype("<f8").tobytes()) + _bytes_field(7, counts.astype("<f8").tobytes()))
    return _bytes_field(1, tag.encode("utf-8")) + _bytes_field(5, histo)


# ------------------------------------------------------------------ the writer
_counter = iter(range(1 << 62))
_counter_lock = threading.Lock()


class EventFileWriter:
    """Appends summaries to a new event file in `log_dir` (created when missing), named as
    TensorFlow names them (`events.out.tfevents.<time>.<host>.<pid>.<n>`) so TensorBoard finds it.

    Args:
        log_dir: The directory of the file (one run of TensorBoard's run selector).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self.log_dir = os.fspath(log_dir)
        os.makedirs(self.log_dir, exist_ok=True)
        with _counter_lock:
            n = next(_counter)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{n}.v2"
        self.path = os.path.join(self.log_dir, name)
        self._file: Any = open(self.path, "wb")
        self._write(_event(time.time(), 0, file_version=b"brain.Event:2"))

    def _write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError(f"the event file {self.path} is closed")
        length = struct.pack("<Q", len(data))
        self._file.write(length + struct.pack("<I", _masked_crc(length)) + data
                         + struct.pack("<I", _masked_crc(data)))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """Write one scalar.

        Args:
            tag: The scalar's name (TensorBoard's chart title).
            value: Its value (converted to float32, as TensorBoard stores it).
            step: The x coordinate (an epoch or a batch count).
        """
        self._write(_event(time.time(), step, summary=_bytes_field(1, _scalar_value(tag, value))))

    def add_histogram(self, tag: str, values: Any, step: int, bins: int = 30) -> None:
        """Write the histogram of `values` (non-finite values left out).

        Args:
            tag: The histogram's name.
            values: An array of any shape.
            step: The x coordinate (an epoch).
            bins: The number of equal-width buckets between the smallest and largest value.
        """
        self._write(_event(time.time(), step, summary=_bytes_field(1, _histogram_value(tag, values, bins))))

    def flush(self) -> None:
        """Push what was written to the operating system."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file (later writes raise ValueError)."""
        if self._file is not None:
            self._file.close()
            self._file = None


# ------------------------------------------------------------------ the reader
def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a message: ints for varints, bytes for the rest."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            n, i = _read_varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _decode_value(data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, _, value in _fields(data):
        if field == 1:
            out["tag"] = value.decode("utf-8")
        elif field == 2:
            out["simple_value"] = struct.unpack("<f", value)[0]
        elif field == 5:
            histo: dict[str, Any] = {}
            for f, _, v in _fields(value):
                if f in (1, 2, 3, 4, 5):
                    histo[("min", "max", "num", "sum", "sum_squares")[f - 1]] = struct.unpack("<d", v)[0]
                elif f in (6, 7):
                    histo["bucket_limit" if f == 6 else "bucket"] = np.frombuffer(v, dtype="<f8").tolist()
            out["histo"] = histo
    return out


def read_events(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The events of an event file, each a dict: wall_time, step, and file_version or values (a
    list of {"tag", "simple_value" or "histo"}). Checks every record's CRCs (ValueError when one
    does not match: a truncated or corrupted file).

    Args:
        path: The event file.
    """
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        if i + 12 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {i}")
        length_bytes = data[i:i + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", data[i + 8:i + 12])
        if _masked_crc(length_bytes) != length_crc:
            raise ValueError(f"{path}: bad length checksum at byte {i}")
        body = data[i + 12:i + 12 + length]
        end = i + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"{path}: truncated record at byte {i}")
        if _masked_crc(body) != struct.unpack("<I", data[end:end + 4])[0]:
            raise ValueError(f"{path}: bad data checksum at byte {i}")
        i = end + 4
        event: dict[str, Any] = {}
        for field, _, value in _fields(body):
            if field == 1:
                event["wall_time"] = struct.unpack("<d", value)[0]
            elif field == 2:
                event["step"] = value - (1 << 64) if value >= 1 << 63 else value
            elif field == 3:
                event["file_version"] = value.decode("utf-8")
            elif field == 5:
                event["values"] = [_decode_value(v) for f, _, v in _fields(value) if f == 1]
        yield event
