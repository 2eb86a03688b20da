"""Model files: one zip holding `config.json` (architecture, compile settings) and the weights
(and optimizer state) as `.npy` members.

Loading treats every file as untrusted:

- Nothing is unpickled or executed. Arrays are parsed from their `.npy` header (at most
  `MAX_NPY_HEADER` bytes, read before anything else) and must hold plain numbers (float weights;
  the optimizer's iteration counter is an integer); classes come only from cynet's own
  registries; member names are never used as paths, and any name other than `config.json`,
  `weights/NNNNN.npy` and `optimizer/NNNNN.npy` (or a duplicate name) is refused.
- Nothing is allocated that the file does not pay for. Before `zipfile` parses the member table,
  the end-of-central-directory record (and its zip64 twin, if present) is checked: at most
  `MAX_MEMBERS` members, at least 128 bytes of file for each (headers, name and .npy header), and
  a central directory that lies inside the file; the directory itself is then walked in bounded
  chunks, and must hold exactly the number of records the end record lists. So a zip listing
  millions of tiny entries is refused with a few MiB of memory, not the ~500 bytes per entry
  `zipfile` would spend on it, and the member table of any file costs at most ~4 times the file's
  size (~64 MiB at most). Array members must be stored uncompressed
  (cynet writes them that way), lie inside the file and not overlap, and each `.npy` header must
  declare exactly the bytes its member holds; so the arrays of a file add up to at most the
  file's size. Before `load_model` builds a single weight it runs every layer's own `build` with
  an `add_weight` that only records shapes, and refuses an architecture whose weights differ from
  the arrays in the file (a config asking for `Dense(10**12)` is refused without allocating), and
  likewise builds the optimizer with an `add_variable` that only records shapes, and refuses
  optimizer state that does not match it, before the optimizer's slots are created.
  `config.json` may be deflated but is read through a bound of `MAX_CONFIG_BYTES`.
- Any damage (truncation, flipped bytes: zip CRC errors, bad headers, invalid JSON, wrong types
  in the config, recursion that is too deep) raises `FileFormatError`, a ValueError that names
  the file and what is wrong. A missing path raises FileNotFoundError, a directory
  IsADirectoryError.

Saving is atomic: the zip is written to a temporary file in the target's directory, named
`.<name>.tmp-<pid>@<host>.<random>.partial`, flushed and fsynced, given the permissions a plain
`open(path, "w")` would give (those of the file it replaces, else 0o666 minus the umask), and
renamed over the target. An exception or interrupt (KeyboardInterrupt, a full disk) removes the
temporary file and leaves the previous file untouched. A process killed outright (SIGKILL, power
loss) can leave the `.partial` file behind, never a damaged target: such a file is not a
checkpoint (its name does not end in `.cynet` / `.weights.npz`, and loading it is refused), and
the next save to the same target on the same host removes partials whose process no longer runs.
When the target is a symbolic link, the link itself is replaced by the new file (the file it
pointed to is left as it was), as `os.replace` does.
"""
import contextlib
import errno
import inspect
import io
import json
import math
import os
import re
import socket
import stat
import struct
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from .saving_objects import deserialize_keras_object, serialize_keras_object  # noqa: F401
from .utils.serialization import (  # noqa: F401  (Keras's keras.saving names)
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)

FORMAT = "cynet"
VERSION = 1
MODEL_EXT = ".cynet"
WEIGHTS_EXT = ".weights.npz"
MAX_CONFIG_BYTES = 16 * 2**20
MAX_CONFIG_DEPTH = 200  # nesting of config.json (a nested model adds about ten levels)
MAX_NPY_HEADER = 10000  # numpy's own limit for untrusted headers
MAX_LAYERS = 10000  # building a Sequential model is quadratic in its number of layers
# Members of a zip cynet opens: config.json, the weights and the optimizer's state. MAX_LAYERS layers
# with four weights each (BatchNormalization), under an optimizer with up to three slots per trainable
# weight, need about 100,000; zipfile spends ~500 bytes of memory on each member it lists.
MAX_MEMBERS = 2**17
_MAX_NDIM = 32
_MAX_DIM = 2**62
_NPY_MAGIC = b"\x93NUMPY"
_ARRAY_MEMBER = re.compile(r"(weights|optimizer)/([0-9]{5,})\.npy")
_PARTIAL_SUFFIX = ".partial"
# Zip records (APPNOTE 4.3): end of central directory, zip64 locator and zip64 end record, and the
# fixed parts of a central-directory record and of a local header.
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_CENTRAL_RECORD = 46
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL_HEADER = 30
# Every member cynet accepts has a 30-byte local header and a 46-byte directory record, each with
# its name (at least 11 bytes, "config.json"), and holds at least 50 bytes (a .npy header; cynet
# writes 128): a file of S bytes holds fewer than S / 128 members that cynet could load.
_MIN_MEMBER_BYTES = 128
_MAX_ZIP_COMMENT = 2**16 - 1
_SCAN_CHUNK = 2**20
_PARTIAL_NAME = re.compile(r"\.(?P<base>.+)\.tmp-(?P<pid>[0-9]+)@(?P<host>[A-Za-z0-9_]*)\.[A-Za-z0-9_]+\.partial")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_NESTING = np.zeros(256, np.int8)
_JSON_NESTING[[ord("["), ord("{")]] = 1
_JSON_NESTING[[ord("]"), ord("}")]] = -1


def _json_depth(text):
    """The deepest nesting of [ and { in a JSON text (strings skipped), found without recursion,
    so that json.loads never meets a nesting that the interpreter's recursion limit decides on."""
    bare = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8", "replace"), dtype=np.uint8)
    steps = _JSON_NESTING[bare]
    return int(np.cumsum(steps, dtype=np.int64).max()) if steps.size else 0


class FileFormatError(ValueError):
    """A model or weights file that is damaged, hostile, or does not fit the model."""


# Errors that reading a damaged zip or .npy member can raise (a RecursionError is a RuntimeError,
# as is zipfile's "password required" for a member flagged as encrypted).
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, OSError, ValueError,
           NotImplementedError, RuntimeError, OverflowError, IndexError, KeyError, TypeError, AttributeError,
           SyntaxError)


def _short(exc, limit=300):
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def _reading(path, what):
    """Turn any error from parsing untrusted bytes into a FileFormatError naming the file and `what`."""
    try:
        yield
    except FileFormatError:
        raise
    except _DAMAGE as exc:
        raise FileFormatError(f"{path}: {what} ({type(exc).__name__}: {_short(exc)})") from None


# ==================================================================================== saving

def _umask():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it elsewhere
    os.umask(mask)
    return mask


def _new_file_mode(path):
    """The permissions `open(path, "w")` would leave: those of the regular file it replaces, else
    0o666 minus the umask (a symbolic link is replaced, not followed, so it counts as absent)."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    except OSError:
        pass
    return 0o666 & ~_umask()


def _host_tag():
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32]


def _partial_prefix(path):
    return f".{os.path.basename(path)[:100]}.tmp-"


def _pid_alive(pid):
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def _remove_stale_partials(path, directory):
    """Remove temporary files that an earlier save of `path` on this host left when its process
    was killed (their pid no longer runs). Partials of live processes are left alone."""
    prefix, host = _partial_prefix(path), _host_tag()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(_PARTIAL_SUFFIX)):
            continue
        match = _PARTIAL_NAME.fullmatch(entry.name)
        if match is None or match["host"] != host or _pid_alive(int(match["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        except OSError:
            pass


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_zip(path, overwrite, members):
    """Write members (an iterable of (name, bytes)) into a zip at path via a temp file + rename."""
    def write(raw):
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, data in members:
                zf.writestr(name, data)
    _atomic_write(path, overwrite, write)


def _atomic_write(path, overwrite, write):
    """Create the file at path with `write(binary file)`, via a temp file + rename: a crash or a
    full disk leaves the previous file (if any) as it was."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "cannot save a model over a directory", path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot save {path}: no such directory", directory)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "the file exists and overwrite=False", path)
    mode = _new_file_mode(path)
    _remove_stale_partials(path, directory)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_partial_prefix(path)}{os.getpid()}@{_host_tag()}.",
                                   suffix=_PARTIAL_SUFFIX, dir=directory)
        with os.fdopen(fd, "wb") as raw:
            write(raw)
            raw.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(raw.fileno(), mode)
            else:
                os.chmod(tmp, mode)
            os.fsync(raw.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
        tmp = None
    except OSError as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"while saving {path}; the file that was there (if any) is unchanged")
        raise
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _fsync_directory(directory)


def _link_no_clobber(tmp, path):
    """Move tmp to path unless path exists, without a window in which another writer's file is replaced."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "the file exists and overwrite=False", path) from None
    except OSError:  # a filesystem without hard links
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "the file exists and overwrite=False", path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _npy_bytes(array):
    buf = io.BytesIO()
    npy_format.write_array(buf, np.asarray(array, order="C"), allow_pickle=False)
    return buf.getvalue()


def _array_members(prefix, arrays):
    """(name, .npy bytes) pairs, produced one at a time so a save holds one array's copy at most."""
    for i, a in enumerate(arrays):
        yield f"{prefix}/{i:05d}.npy", _npy_bytes(a)


def _optimizer_built_on(model, optimizer):
    """The positions in `model.weights` of the variables `optimizer` was built on (in its build
    order), or None for an optimizer not built yet (it builds on the first training step)."""
    if not optimizer.built:
        return None
    positions = {id(v): i for i, v in enumerate(model.weights)}
    built_on = []
    for v in optimizer._trainable_variables:
        i = positions.get(id(v))
        if i is None:
            raise ValueError(f"cannot save the state of optimizer {optimizer.name!r}: it was built on the variable "
                             f"{_where(v)!r}, which is not a weight of this model (an optimizer shared with "
                             "another model?)")
        built_on.append(i)
    return built_on


MODEL_FORMATS = (".keras", MODEL_EXT)
WEIGHTS_FORMATS = (".weights.h5", WEIGHTS_EXT)


def _format(filepath, formats, what):
    """The extension of `filepath` among `formats`, else a ValueError listing them."""
    path = os.fspath(filepath)
    for ext in formats:
        if path.endswith(ext):
            return ext
    if path.endswith(".h5"):
        raise ValueError(f"saving the legacy HDF5 format ('.h5') is not supported (cynet reads it): use one of "
                         f"{list(formats)} (the first is Keras 3's format, which Keras loads); "
                         f"received filepath={path!r}")
    raise ValueError(f"{what} filepath must end in one of {list(formats)}; received filepath={path!r}")


def _check_regular(path):
    """Refuse a directory, FIFO or device where a file is to be read."""
    st = os.stat(path)   # FileNotFoundError, PermissionError: as they are
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a model file", path)
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(f"{path} is not a regular file")


def save_model(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
    """Save architecture, weights, compile settings and optimizer state: Keras 3's `.keras` archive
    (Keras loads it) or cynet's `.cynet` file, by the extension.

    The optimizer's state is its iteration counter and, once it is built (on the first training
    step), its slots, with the positions of the weights it was built on, so that loading rebuilds
    it on the same weights in the same order whatever has become trainable since.

    Args:
        model: The model being trained, evaluated or run.
        filepath: Path of the file.
        overwrite: Whether to overwrite an existing file (`False` raises instead of asking, unlike Keras's
            prompt).
    """
    if _format(filepath, MODEL_FORMATS, "model") == ".keras":
        from .saving_keras import save_keras
        return save_keras(model, filepath, overwrite)
    path = os.fspath(filepath)
    if not model.built:
        raise ValueError("the model must be built (called on data, or given an input shape) before it is saved")
    from . import optimizers
    weights = model.weights
    config: dict[str, Any]
    config = {"format": FORMAT, "version": VERSION,
              "model": {"class_name": type(model).__name__, "config": model.get_config()},
              "compile": dict(getattr(model, "_compile_config", None) or {}) if model.compiled else None,
              "n_weights": len(weights)}
    opt = model.optimizer if model.compiled else None
    opt_values = []
    if opt is not None:
        config["compile"]["optimizer"] = optimizers.serialize(opt)
        config["optimizer_built_on"] = _optimizer_built_on(model, opt)
        opt_values = [v.value for v in opt.variables]
        config["n_optimizer_variables"] = len(opt_values)

    def members():
        yield "config.json", json.dumps(config).encode()
        yield from _array_members("weights", (v.value for v in weights))
        yield from _array_members("optimizer", opt_values)

    _atomic_zip(path, overwrite, members())


def save_weights(model: Any, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
    """Save the model's weights: Keras 3's `.weights.h5` layout, or cynet's `.weights.npz` (in
    `model.weights` order), by the extension.

    Args:
        model: The model being trained, evaluated or run.
        filepath: Path of the file.
        overwrite: Whether to overwrite an existing file (`False` raises instead of asking, unlike Keras's
            prompt).
    """
    if _format(filepath, WEIGHTS_FORMATS, "weights") == ".weights.h5":
        from .saving_keras import save_weights_h5
        return save_weights_h5(model, filepath, overwrite)
    path = os.fspath(filepath)
    weights = model.weights
    config = {"format": FORMAT + "-weights", "version": VERSION, "n_weights": len(weights)}

    def members():
        yield "config.json", json.dumps(config).encode()
        yield from _array_members("weights", (v.value for v in weights))

    _atomic_zip(path, overwrite, members())


# ==================================================================================== loading

class _Archive:
    """An open zip whose member table has been vetted: no duplicate or unsafe names, members inside
    the file and not overlapping."""

    def __init__(self, filepath):
        self.path = path = os.fspath(filepath)
        match = _PARTIAL_NAME.fullmatch(os.path.basename(path))
        if match:
            raise FileFormatError(f"{path} is the temporary file of an interrupted save, not a checkpoint "
                                  f"(the checkpoint it was meant to replace is {match['base']!r})")
        st = os.stat(path)  # FileNotFoundError, PermissionError: as they are
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a cynet file", path)
        if not stat.S_ISREG(st.st_mode):
            raise FileFormatError(f"{path} is not a regular file, so not a cynet file")
        self.file = open(path, "rb")
        try:
            self.size = os.fstat(self.file.fileno()).st_size
            with _reading(path, "is not a cynet file (its zip directory cannot be read)"):
                n_members = self._check_central_directory()
            try:
                self.zf = zipfile.ZipFile(self.file, "r")
            except _DAMAGE as exc:
                raise FileFormatError(f"{path} is not a cynet file (not a readable zip archive: "
                                      f"{type(exc).__name__}: {_short(exc)})") from None
            if len(self.zf.filelist) != n_members:
                raise FileFormatError(f"{path} is damaged or hostile: zipfile read {len(self.zf.filelist)} members "
                                      f"from a central directory that holds {n_members}")
            self._vet_members()
        except BaseException:
            self.close()
            raise

    def close(self):
        zf = getattr(self, "zf", None)
        if zf is not None:
            zf.close()
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _end_record(self):
        """(where the central directory ends, member count, central directory size, whether zip64)
        from the end-of-central-directory record, found as zipfile finds it (the last 22 bytes, else
        the last signature in the final 64 KiB), with the zip64 end record's values where zipfile
        would use them. zipfile parses the `size` bytes just before the end record (and its zip64
        records), whatever offset the record states, and ignores the member count."""
        f, size, path = self.file, self.size, self.path
        record = None
        if size >= _EOCD.size:
            f.seek(size - _EOCD.size)
            tail = f.read(_EOCD.size)
            if tail[:4] == _EOCD_SIG and tail[-2:] == b"\x00\x00":
                position, record = size - _EOCD.size, tail
            else:
                low = max(size - _MAX_ZIP_COMMENT - 1 - _EOCD.size, 0)
                f.seek(low)
                data = f.read(size - low)
                found = data.rfind(_EOCD_SIG)
                if found >= 0 and len(data) - found >= _EOCD.size:
                    position, record = low + found, data[found:found + _EOCD.size]
        if record is None:
            raise FileFormatError(f"{path} is not a cynet file (not a readable zip archive: it has no "
                                  "end-of-central-directory record)")
        _, _, _, _, count, cd_size, _, _ = _EOCD.unpack(record)
        zip64 = False
        if position >= _ZIP64_LOCATOR.size:
            f.seek(position - _ZIP64_LOCATOR.size)
            locator = f.read(_ZIP64_LOCATOR.size)
            if len(locator) == _ZIP64_LOCATOR.size and locator[:4] == _ZIP64_LOCATOR_SIG:
                _, disk, _, disks = _ZIP64_LOCATOR.unpack(locator)
                if disk != 0 or disks > 1:
                    raise FileFormatError(f"{path} is not a cynet file (a zip archive spanning several disks)")
                start = position - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size
                if start >= 0:
                    f.seek(start)
                    end64 = f.read(_ZIP64_EOCD.size)
                    if len(end64) == _ZIP64_EOCD.size and end64[:4] == _ZIP64_EOCD_SIG:
                        _, _, _, _, _, _, _, count, cd_size, _ = _ZIP64_EOCD.unpack(end64)
                        zip64 = True
        cd_end = position - (_ZIP64_LOCATOR.size + _ZIP64_EOCD.size if zip64 else 0)
        return cd_end, count, cd_size, zip64

    def _check_central_directory(self):
        """Refuse, before zipfile parses (and holds in memory) every member the central directory
        lists, a directory with more members than MAX_MEMBERS or than the file can hold, and one
        whose records do not match its end record. Reads the directory in bounded chunks; returns
        the number of members."""
        f, size, path = self.file, self.size, self.path
        cd_end, count, cd_size, zip64 = self._end_record()
        what = "zip64 end-of-central-directory record" if zip64 else "end-of-central-directory record"
        if count > MAX_MEMBERS:
            raise FileFormatError(f"{path} is not a cynet file: its {what} lists {count} members, more than the "
                                  f"{MAX_MEMBERS} a cynet file can have")
        if count * _MIN_MEMBER_BYTES > size:
            raise FileFormatError(f"{path} is truncated or hostile: its {what} lists {count} members, more than "
                                  f"its {size} bytes can hold (a member of a cynet file takes at least "
                                  f"{_MIN_MEMBER_BYTES} bytes)")
        if cd_size > cd_end or cd_size < count * _CENTRAL_RECORD:
            raise FileFormatError(f"{path} is truncated or hostile: its central directory of {cd_size} bytes "
                                  f"cannot hold the {count} members its {what} lists, or does not fit in the file")
        start, offset, records = cd_end - cd_size, 0, 0
        chunk, chunk_start = b"", 0
        while offset < cd_size:
            if records == count:
                raise FileFormatError(f"{path} is damaged or hostile: its central directory holds more than "
                                      f"the {count} members its {what} lists")
            if offset + _CENTRAL_RECORD > chunk_start + len(chunk):
                f.seek(start + offset)
                chunk, chunk_start = f.read(min(cd_size - offset, _SCAN_CHUNK)), offset
                if len(chunk) < _CENTRAL_RECORD:
                    raise FileFormatError(f"{path} is truncated or damaged: its central directory ends "
                                          "inside a record")
            at = offset - chunk_start
            if not chunk.startswith(_CENTRAL_SIG, at):
                raise FileFormatError(f"{path} is damaged: its central directory has a bad record at byte "
                                      f"{start + offset}")
            name_len, extra_len, comment_len = struct.unpack_from("<3H", chunk, at + 28)
            offset += _CENTRAL_RECORD + name_len + extra_len + comment_len
            records += 1
        if offset != cd_size or records != count:
            raise FileFormatError(f"{path} is damaged or hostile: its central directory holds {records} "
                                  f"members in {offset} bytes, its {what} lists {count} in {cd_size}")
        return count

    def _vet_members(self):
        path = self.path
        self.infos = {}
        for info in self.zf.infolist():
            name = info.filename
            if (not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name or "\x00" in name
                    or ".." in name.split("/")):
                raise FileFormatError(f"{path} contains an unsafe member name {name!r}")
            if name in self.infos:
                raise FileFormatError(f"{path} contains the member {name!r} twice")
            if info.flag_bits & 0x1:
                raise FileFormatError(f"{path}: member {name!r} is encrypted")
            self.infos[name] = info
        spans = []
        for info in self.infos.values():
            raw_name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")
            end = info.header_offset + 30 + len(raw_name) + info.compress_size  # local header: 30 bytes + name
            if info.header_offset < 0 or info.compress_size < 0 or end > self.size:
                raise FileFormatError(f"{path} is truncated or damaged: member {info.filename!r} "
                                      f"extends past the end of the file")
            spans.append((info.header_offset, end, info.filename))
        spans.sort()
        for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
            if start < end:
                raise FileFormatError(f"{path} is damaged or hostile: members {name!r} and {other!r} overlap")

    def describe(self):
        """A guess at what a zip that is not a cynet file is, for the error message (or None)."""
        names = set(self.infos)
        if "metadata.json" in names or any(n.endswith(".h5") for n in names):
            return "it looks like a Keras .keras archive: load it from a file named *.keras"
        if names and all(n.endswith(".npy") for n in names):
            return "it looks like a NumPy .npz archive (numpy.savez); cynet reads only its own files"
        return None

    def read_member(self, name, limit):
        """The bytes of member `name` (at most `limit` of them: a deflated member inflates only as far
        as its declared size), or FileFormatError."""
        path = self.path
        info = self.infos.get(name)
        if info is None:
            raise FileFormatError(f"{path}: has no {name}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise FileFormatError(f"{path}: {name} uses an unsupported compression method")
        if info.file_size > limit:
            raise FileFormatError(f"{path}: {name} is implausibly large ({info.file_size} bytes)")
        with _reading(path, f"{name} is damaged"):
            with self.zf.open(info) as f:
                raw = f.read(info.file_size)
                if len(raw) != info.file_size or f.read(1):
                    raise FileFormatError(f"{path}: {name} is truncated")
        return raw

    def read_json(self, name):
        """Member `name` parsed as JSON, its nesting depth checked before parsing."""
        path = self.path
        raw = self.read_member(name, MAX_CONFIG_BYTES)
        with _reading(path, f"{name} is damaged"):
            text = raw.decode("utf-8")
            depth = _json_depth(text)
            if depth > MAX_CONFIG_DEPTH:
                raise FileFormatError(f"{path}: {name} nests {depth} levels deep, more than the "
                                      f"{MAX_CONFIG_DEPTH} a model config needs")
            return json.loads(text)

    def read_config(self, formats):
        path = self.path
        if "config.json" not in self.infos:
            raise FileFormatError(f"{path} is not a cynet file: {self.describe() or 'it has no config.json'}")
        config = self.read_json("config.json")
        if not isinstance(config, dict) or config.get("format") not in formats:
            found = config.get("format") if isinstance(config, dict) else None
            hint = self.describe() or (f"its config.json says format={found!r}" if isinstance(found, str)
                                       else "its config.json has no cynet format tag")
            raise FileFormatError(f"{path} is not a {' or '.join(repr(f) for f in formats)} file: {hint}")
        version = config.get("version")
        if type(version) is not int or version != VERSION:
            raise FileFormatError(f"{path} has format version {version!r}; this cynet reads {VERSION}")
        return config

    def count(self, config, key):
        """A non-negative integer count from config.json, bounded by the members present."""
        value = config.get(key, 0)
        if type(value) is not int or value < 0:
            raise FileFormatError(f"{self.path}: config.json's {key!r} must be a non-negative integer; "
                                  f"received {_short(repr(value), 80)}")
        if value > len(self.infos):
            raise FileFormatError(f"{self.path}: config.json promises {value} arrays for {key!r} but the file "
                                  f"has only {len(self.infos)} members")
        return value

    def check_members(self, n_weights, n_optimizer=0):
        """Every member is config.json or one of the arrays config.json announces; all of those exist."""
        counts = {"weights": n_weights, "optimizer": n_optimizer}
        for name in self.infos:
            if name == "config.json":
                continue
            match = _ARRAY_MEMBER.fullmatch(name)
            if match is None or name != f"{match[1]}/{int(match[2]):05d}.npy" or int(match[2]) >= counts[match[1]]:
                raise FileFormatError(f"{self.path} contains an unexpected member {name!r}")
        for prefix, n in counts.items():
            for i in range(n):
                if f"{prefix}/{i:05d}.npy" not in self.infos:
                    raise FileFormatError(f"{self.path} is missing {prefix}/{i:05d}.npy")

    # ------------------------------------------------------------------ arrays
    def _array_info(self, name):
        info = self.infos.get(name)
        if info is None:
            raise FileFormatError(f"{self.path} is missing {name}")
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise FileFormatError(f"{self.path}: {name} is compressed; cynet stores arrays uncompressed "
                                  "(re-zipped or not a cynet file)")
        return info

    def _header(self, f, name, info):
        """Parse a .npy header, reading at most MAX_NPY_HEADER bytes, and check it describes exactly
        the member's bytes. Returns (shape, fortran_order, dtype, number of data bytes)."""
        path = self.path
        magic = f.read(8)
        if len(magic) != 8 or magic[:6] != _NPY_MAGIC:
            raise FileFormatError(f"{path}: {name} is not a .npy array")
        version = (magic[6], magic[7])
        if version not in ((1, 0), (2, 0)):
            raise FileFormatError(f"{path}: {name} has unsupported .npy version {version}")
        size_format = "<H" if version == (1, 0) else "<I"
        size_bytes = f.read(struct.calcsize(size_format))
        if len(size_bytes) != struct.calcsize(size_format):
            raise FileFormatError(f"{path}: {name} is truncated")
        (header_len,) = struct.unpack(size_format, size_bytes)
        if header_len > MAX_NPY_HEADER:
            raise FileFormatError(f"{path}: {name} has a {header_len}-byte header, more than the "
                                  f"{MAX_NPY_HEADER} a cynet array needs")
        header = f.read(header_len)
        if len(header) != header_len:
            raise FileFormatError(f"{path}: {name} is truncated")
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran, dtype = reader(io.BytesIO(size_bytes + header), max_header_size=MAX_NPY_HEADER)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "fiu":
            raise FileFormatError(f"{path}: {name} holds dtype {dtype}, not plain numbers")
        if (len(shape) > _MAX_NDIM or any(type(d) is not int or not 0 <= d <= _MAX_DIM for d in shape)):
            raise FileFormatError(f"{path}: {name} declares an invalid shape {_short(repr(shape), 80)}")
        nbytes = math.prod(shape) * dtype.itemsize
        if 8 + len(size_bytes) + header_len + nbytes != info.file_size:
            raise FileFormatError(f"{path}: {name} declares a {tuple(shape)} {dtype} array ({nbytes} bytes) but "
                                  f"holds {info.file_size - 8 - len(size_bytes) - header_len} bytes of data "
                                  "(truncated or damaged)")
        return tuple(shape), fortran, dtype, nbytes

    def array_header(self, name):
        info = self._array_info(name)
        with _reading(self.path, f"{name} is damaged"):
            with self.zf.open(info) as f:
                return self._header(f, name, info)

    def read_array(self, name, var, exact_dtype):
        """The array `name` as a new array of var's shape and dtype, after checking its header.

        exact_dtype: the file's dtype must be var's (in either byte order); otherwise any float
        array is accepted for a float variable and cast.
        """
        path = self.path
        info = self._array_info(name)
        with _reading(path, f"{name} is damaged"):
            with self.zf.open(info) as f:
                shape, fortran, dtype, nbytes = self._header(f, name, info)
                _check_fits(path, name, shape, dtype, var, exact_dtype)
                data = f.read(nbytes)
                if len(data) != nbytes or f.read(1):  # reading to the end checks the zip CRC
                    raise FileFormatError(f"{path}: {name} is truncated")
            arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape)).reshape(shape, order="F" if fortran else "C")
            return arr.astype(var.dtype, copy=True)


def _where(var):
    return getattr(var, "path", None) or getattr(var, "name", "?")


def _check_fits(path, name, shape, dtype, var, exact_dtype):
    want_shape, want_dtype = tuple(var.shape), np.dtype(var.dtype)
    if shape != want_shape:
        raise FileFormatError(f"{path}: {name} has shape {shape}, the model's weight {_where(var)!r} has shape "
                              f"{want_shape} (a file saved from a different model?)")
    if exact_dtype:
        ok = dtype.newbyteorder("=") == want_dtype
    elif want_dtype.kind == "f":
        ok = dtype.kind == "f"
    else:
        ok = dtype.kind in "iu" and np.can_cast(dtype, want_dtype, casting="same_kind")
    if not ok:
        raise FileFormatError(f"{path}: {name} holds {dtype.name} values, the model's weight {_where(var)!r} is "
                              f"{want_dtype.name}")


def _plan_weights(path, model_class, model_config, headers):
    """Check, before any weight is allocated, that the architecture in model_config builds exactly
    the weights whose .npy headers are `headers` [(shape, fortran, dtype, nbytes)].

    Each layer is built by its own `build`, through an `add_weight` (set on the instance) that
    records the shape instead of allocating it; building stops as soon as the recorded weights
    need more bytes than the file holds.
    """
    from .layers import Layer, deserialize_hook
    from .variables import Variable

    budget = sum(h[3] for h in headers)
    signature = inspect.signature(Layer.add_weight)
    total = 0

    def recorder(layer, records):
        def add_weight(*args, **kwargs):
            nonlocal total
            arguments = signature.bind(layer, *args, **kwargs)
            arguments.apply_defaults()
            a = arguments.arguments
            shape = tuple(int(s) for s in a["shape"])
            dtype = np.dtype(a["dtype"] or layer.dtype)
            if len(shape) > _MAX_NDIM or any(not 0 <= s <= _MAX_DIM for s in shape):
                raise FileFormatError(f"{path}: layer {layer.name!r} in config.json asks for a weight of shape "
                                      f"{shape}: refused before allocating it")
            total += math.prod(shape) * dtype.itemsize
            if total > budget:
                raise FileFormatError(
                    f"{path}: the architecture in config.json needs more weight bytes than the {budget} the file "
                    f"holds (layer {layer.name!r} asks for a {shape} {dtype.name} weight): refused before "
                    "allocating it")
            records[bool(a["trainable"])].append((f"{layer.name}/{a['name']}", shape, dtype))
            placeholder = Variable(np.zeros((), dtype=dtype), dtype=dtype, trainable=a["trainable"], name=a["name"])
            placeholder.value = np.broadcast_to(placeholder.value, shape)  # no memory behind it
            return placeholder
        return add_weight

    layer_configs = model_config.get("layers", [])
    if not isinstance(layer_configs, list):
        raise FileFormatError(f"{path}: config.json's model 'layers' must be a list")
    if len(layer_configs) > MAX_LAYERS:
        raise FileFormatError(f"{path}: config.json lists {len(layer_configs)} layers, more than the "
                              f"{MAX_LAYERS} cynet loads")
    planned = []

    def plan_layer(layer):
        records = {True: [], False: []}
        layer.add_weight = recorder(layer, records)
        planned.append(records)
    if model_class.__name__ not in _MODEL_CLASSES:
        return   # a registered subclassed model makes its layers in its own code: checked once built
    with deserialize_hook(plan_layer):
        plan = _model_from_config(path, model_class, model_config)
    if not plan.built:
        raise FileFormatError(f"{path}: the saved model has no input shape (no Input layer, input_shape or "
                              "build_input_shape in config.json)")
    planned = [w for records in planned for w in records[True] + records[False]]
    if len(planned) != len(headers):
        raise FileFormatError(f"{path}: holds {len(headers)} weights, the architecture in config.json has "
                              f"{len(planned)}")
    for i, ((where, shape, dtype), header) in enumerate(zip(planned, headers)):
        if header[0] != shape or header[2].newbyteorder("=") != dtype:
            raise FileFormatError(f"{path}: weights/{i:05d}.npy holds a {header[0]} {header[2].name} array, the "
                                  f"architecture in config.json needs {shape} {dtype.name} for {where!r}")


_MODEL_CLASSES = ("Sequential", "Functional")


def _model_class(path, spec):
    """The model class a file names: Sequential, Functional, or a Model subclass registered with
    register_keras_serializable (or given in custom_objects); never an import."""
    from . import models
    name = spec.get("class_name") if isinstance(spec, dict) else None
    if name in _MODEL_CLASSES:
        return getattr(models, name)
    cls = None
    if isinstance(name, str):
        registered = spec.get("registered_name")
        cls = get_registered_object(registered if isinstance(registered, str) else name)
    if not (isinstance(cls, type) and issubclass(cls, models.Model)):
        found = name if isinstance(spec, dict) else spec
        raise FileFormatError(f"{path}: unknown model class {_short(repr(found), 80)}: cynet loads Sequential and "
                              "Functional models, and subclassed models whose class is registered with "
                              "@cynet.saving.register_keras_serializable() or passed in custom_objects")
    return cls


def _model_from_config(path, model_class, model_config):
    model = model_class.from_config(dict(model_config))
    shape = model_config.get("build_input_shape") if model_class.__name__ not in _MODEL_CLASSES else None
    if shape is not None and not model.built:
        model._build_from_shapes(shape)
    return model


def load_model(filepath: str | os.PathLike[str], custom_objects: dict[str, Any] | None = None, compile: bool = True,
               safe_mode: bool = True) -> Any:
    """Load a model saved with `model.save(...)` (cynet's `.cynet`, Keras 3's `.keras`, or a legacy
    TF-Keras 2 `.h5`, by the extension): same predictions, and (compiled) ready to continue training
    with its optimizer state (a legacy `.h5` file's optimizer starts afresh). `custom_objects` (name -> class) adds classes for this load, as does a
    `custom_object_scope`; nothing in the file is executed (`safe_mode` has nothing more to refuse).

    Args:
        filepath: Path of the file.
        custom_objects: Optional dict mapping names to custom classes or functions used while deserializing.
        compile: Whether to compile the loaded model with its saved training configuration.
        safe_mode: Refuse to deserialize Lambda layers' Python bytecode (Keras's safe mode).
    """
    with custom_object_scope(custom_objects):
        if os.fspath(filepath).endswith(".keras"):
            from .saving_keras import load_keras
            return load_keras(filepath, compile=compile, safe_mode=safe_mode)
        if os.fspath(filepath).endswith((".h5", ".hdf5")):
            from .saving_legacy_h5 import load_model_legacy
            return load_model_legacy(filepath, compile=compile, safe_mode=safe_mode)
        return _load_model(filepath, compile)


def _load_model(filepath, compile):
    from . import optimizers
    with _Archive(filepath) as archive:
        path = archive.path
        config = archive.read_config((FORMAT,))
        n_weights = archive.count(config, "n_weights")
        n_opt = archive.count(config, "n_optimizer_variables")
        archive.check_members(n_weights, n_opt)
        spec = config.get("model")
        model_class = _model_class(path, spec)
        model_config = spec.get("config", {})
        if not isinstance(model_config, dict):
            raise FileFormatError(f"{path}: config.json's model 'config' must be a dict")
        headers = [archive.array_header(f"weights/{i:05d}.npy") for i in range(n_weights)]
        with _reading(path, "the architecture in config.json is invalid"):
            _plan_weights(path, model_class, model_config, headers)
            model = _model_from_config(path, model_class, model_config)
        if not model.built:
            raise FileFormatError(f"{path}: the saved model has no input shape")
        if n_weights != len(model.weights):
            raise FileFormatError(f"{path}: holds {n_weights} weights, the architecture has {len(model.weights)}")
        values = [archive.read_array(f"weights/{i:05d}.npy", var, exact_dtype=True)
                  for i, var in enumerate(model.weights)]
        for var, value in zip(model.weights, values):
            var.assign(value)
        compile_config = config.get("compile")
        if compile_config is not None and not isinstance(compile_config, dict):
            raise FileFormatError(f"{path}: config.json's 'compile' must be a dict or null")
        if compile and compile_config:
            with _reading(path, "the compile settings in config.json are invalid"):
                loss = compile_config.get("loss")
                model.compile(optimizer=optimizers.deserialize(compile_config["optimizer"]),
                              loss=loss,
                              loss_weights=compile_config.get("loss_weights"),
                              metrics=compile_config.get("metrics") or None,
                              weighted_metrics=compile_config.get("weighted_metrics") or None)
            _restore_optimizer(archive, config, model, compile_config["optimizer"], n_weights, n_opt)
    return model


_ABSENT = object()


def _optimizer_targets(path, config, model, n_weights, n_opt):
    """The model weights the saved optimizer was built on, in its build order, or None when it had
    not been built (it was saved before the first training step)."""
    built_on = config.get("optimizer_built_on", _ABSENT)
    if built_on is _ABSENT:  # a file from before cynet recorded it
        # One array is the iteration counter alone: an optimizer that was not built yet (or one
        # without slots, which builds nothing).
        return None if n_opt <= 1 else list(model.trainable_weights)
    if built_on is None:
        return None
    if (not isinstance(built_on, list) or len(built_on) > n_weights
            or any(type(i) is not int or not 0 <= i < n_weights for i in built_on)
            or len(set(built_on)) != len(built_on)):
        raise FileFormatError(f"{path}: config.json's 'optimizer_built_on' must be null or a list of distinct "
                              f"weight positions below {n_weights}; received {_short(repr(built_on), 80)}")
    weights = model.weights
    return [weights[i] for i in built_on]


def _plan_optimizer(path, optimizer_config, targets, headers):
    """Check, before any slot is allocated, that an optimizer deserialized from optimizer_config and
    built on `targets` has exactly the variables whose .npy headers are `headers`.

    The optimizer is built through an `add_variable` (set on a throwaway instance) that records
    each slot's shape instead of allocating it."""
    from . import optimizers
    from .variables import Variable

    plan = optimizers.deserialize(optimizer_config)
    records = [(v.path, tuple(v.shape), np.dtype(v.dtype)) for v in plan.variables]

    def add_variable(shape, initializer="zeros", dtype=None, name=None):
        dtype = np.dtype("float32" if dtype is None else dtype)
        shape = tuple(int(d) for d in shape)
        name = name or "variable"
        records.append((f"{plan.name}/{name}", shape, dtype))
        placeholder = Variable(np.zeros((), dtype=dtype), dtype=dtype, trainable=False, name=name)
        placeholder.value = np.broadcast_to(placeholder.value, shape)  # no memory behind it
        return placeholder

    plan.add_variable = add_variable
    plan.build(targets)
    if len(records) != len(headers):
        raise FileFormatError(f"{path}: holds {len(headers)} optimizer variables, the optimizer in config.json "
                              f"has {len(records)} (built on {len(targets)} weights): its state does not match "
                              "the model")
    for i, ((where, shape, dtype), header) in enumerate(zip(records, headers)):
        if header[0] != shape or header[2].newbyteorder("=") != dtype:
            raise FileFormatError(f"{path}: optimizer/{i:05d}.npy holds a {header[0]} {header[2].name} array, the "
                                  f"optimizer needs {shape} {dtype.name} for {where!r}")


def _restore_optimizer(archive, config, model, optimizer_config, n_weights, n_opt):
    """Restore the compiled model's optimizer state: the iteration counter, and the slots when the
    saved optimizer was built (an optimizer saved before its first step stays unbuilt, as Keras
    builds it lazily)."""
    path = archive.path
    optimizer = model.optimizer
    if n_opt == 0 and "optimizer_built_on" not in config:
        return  # a file from before cynet saved the state of an optimizer that has none
    targets = _optimizer_targets(path, config, model, n_weights, n_opt)
    headers = [archive.array_header(f"optimizer/{i:05d}.npy") for i in range(n_opt)]
    if targets is None:
        if n_opt != len(optimizer.variables):
            raise FileFormatError(f"{path}: holds {n_opt} optimizer variables, but config.json says the optimizer "
                                  "was not built yet, when its state is its iteration counter alone")
    else:
        with _reading(path, "the optimizer in config.json cannot be built on the model's weights"):
            _plan_optimizer(path, optimizer_config, targets, headers)
            optimizer.build(targets)
        if n_opt != len(optimizer.variables):
            raise FileFormatError(f"{path}: holds {n_opt} optimizer variables, the optimizer has "
                                  f"{len(optimizer.variables)}: its state does not match the model")
    variables = optimizer.variables
    values = [archive.read_array(f"optimizer/{i:05d}.npy", var, exact_dtype=True) for i, var in enumerate(variables)]
    for var, value in zip(variables, values):
        var.assign(value)


def load_weights(model: Any, filepath: str | os.PathLike[str]) -> None:
    """Load weights saved by `save_weights` (or the weights inside a `.cynet` model file) into a built model.

    Every array must have the shape of the model's weight; float arrays of another precision are
    cast to the model's dtype (as Keras does). Nothing is assigned unless all arrays fit.

    Args:
        model: The model being trained, evaluated or run.
        filepath: Path of the file.
    """
    if os.fspath(filepath).endswith(".weights.h5"):
        from .saving_keras import load_weights_h5
        return load_weights_h5(model, filepath)
    if os.fspath(filepath).endswith((".h5", ".hdf5")):
        from .saving_legacy_h5 import load_weights_legacy
        return load_weights_legacy(model, filepath)
    with _Archive(filepath) as archive:
        path = archive.path
        config = archive.read_config((FORMAT + "-weights", FORMAT))
        n_weights = archive.count(config, "n_weights")
        archive.check_members(n_weights, archive.count(config, "n_optimizer_variables"))
        if not model.built:
            raise ValueError("build the model (call it on data or give it an input shape) before load_weights")
        weights = model.weights
        if n_weights != len(weights):
            raise FileFormatError(f"{path}: holds {n_weights} weights, the model has {len(weights)} "
                                  "(a file saved from a different model?)")
        values = [archive.read_array(f"weights/{i:05d}.npy", var, exact_dtype=False)
                  for i, var in enumerate(weights)]
    for var, value in zip(weights, values):
        var.assign(value)


# ============================================================================ training state backups

BACKUP_FORMAT = FORMAT + "-backup"


def save_training_state(model: Any, filepath: str | os.PathLike[str], metadata: dict[str, Any]) -> None:
    """Write what resuming an interrupted `fit` needs into one file, atomically: the model's
    weights, its optimizer's state (iteration counter and slots) and `metadata` (JSON: where
    training stopped). Used by `callbacks.BackupAndRestore`; one file, so a crash can never pair
    the weights of one step with the position of another.

    Args:
        model: The model being trained, evaluated or run.
        filepath: Path of the file.
        metadata: JSON-compatible dict stored with the state (e.g. {"epoch": 3, "step": 0}).
    """
    weights = model.weights
    opt = model.optimizer if getattr(model, "compiled", False) else None
    opt_values = [] if opt is None else [v.value for v in opt.variables]
    config = {"format": BACKUP_FORMAT, "version": VERSION, "n_weights": len(weights),
              "optimizer_built_on": None if opt is None else _optimizer_built_on(model, opt),
              "n_optimizer_variables": len(opt_values), "metadata": dict(metadata)}

    def members():
        yield "config.json", json.dumps(config).encode()
        yield from _array_members("weights", (v.value for v in weights))
        yield from _array_members("optimizer", opt_values)

    _atomic_zip(filepath, True, members())


def load_training_state(model: Any, filepath: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore into `model` (built, and compiled when the state has an optimizer) the weights and
    optimizer state written by `save_training_state`, and return its metadata. Nothing is
    assigned unless every array fits; an unbuilt optimizer is built on the weights it was saved on.

    Args:
        model: The model being trained, evaluated or run.
        filepath: Path of the file.
    """
    with _Archive(filepath) as archive:
        path = archive.path
        config = archive.read_config((BACKUP_FORMAT,))
        n_weights = archive.count(config, "n_weights")
        n_opt = archive.count(config, "n_optimizer_variables")
        archive.check_members(n_weights, n_opt)
        metadata = config.get("metadata")
        if not isinstance(metadata, dict):
            raise FileFormatError(f"{path}: config.json's 'metadata' must be a dict")
        weights = model.weights
        if n_weights != len(weights):
            raise FileFormatError(f"{path}: holds {n_weights} weights, the model has {len(weights)} "
                                  "(a backup of a different model?)")
        values = [archive.read_array(f"weights/{i:05d}.npy", var, exact_dtype=True) for i, var in enumerate(weights)]
        opt = model.optimizer if getattr(model, "compiled", False) else None
        opt_values: list[Any] = []
        if n_opt:
            if opt is None:
                raise ValueError(f"{path} holds optimizer state: compile the model before restoring it")
            targets = _optimizer_targets(path, config, model, n_weights, n_opt)
            if targets is not None:
                if not opt.built:
                    opt.build(targets)
                elif [id(v) for v in opt._trainable_variables] != [id(v) for v in targets]:
                    raise FileFormatError(f"{path}: the optimizer was saved built on other weights than this "
                                          "model's optimizer is built on")
            if n_opt != len(opt.variables):
                raise FileFormatError(f"{path}: holds {n_opt} optimizer variables, the optimizer has "
                                      f"{len(opt.variables)}: its state does not match the model")
            opt_values = [archive.read_array(f"optimizer/{i:05d}.npy", var, exact_dtype=True)
                          for i, var in enumerate(opt.variables)]
    for var, value in zip(weights, values):
        var.assign(value)
    if opt is not None and opt_values:
        for var, value in zip(opt.variables, opt_values):
            var.assign(value)
    return metadata
