"""Finding, downloading and verifying data files (private; the loaders' shared plumbing).

Search order for a data set called `name` (for example "mnist"):

1. the directory the caller names (`path=`),
2. `$CYNET_DATA_DIR/<name>`, then `$CYNET_DATA_DIR` itself,
3. the cache `~/.cynet/datasets/<name>`.

Files found in 1 and 2 are the user's own and are used as they are (their contents are still
validated by the readers). Files in the cache were written by cynet, so a cached file whose hash
does not match the published one is treated as missing and downloaded again. Downloads use only
`urllib` with a timeout, stream into a temporary file beside the target, check the size cap and the
published hash, and then `os.replace` the file into place, so a cache never holds a partial file.
"""
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from ..utils._files import file_kind, open_regular_file

#: Seconds a download may wait on the network for any one operation (connect, each read).
DOWNLOAD_TIMEOUT = 30.0
_CHUNK = 1 << 20



def urlopen(url, timeout):
    """The one place that touches the network (tests monkeypatch it and never go online)."""
    import urllib.request  # imported on first use: it costs more than the rest of cynet.datasets

    return urllib.request.urlopen(url, timeout=timeout)


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are neither on disk nor downloadable; the message says where cynet looked."""


def data_dir_env():
    """The directory named by `$CYNET_DATA_DIR`, or None when it is unset or empty."""
    value = os.environ.get("CYNET_DATA_DIR", "")
    return Path(value).expanduser() if value else None


def cache_dir(name):
    """`~/.cynet/datasets/<name>`: where downloads go (the home directory is read at call time)."""
    return Path(os.path.expanduser("~")) / ".cynet" / "datasets" / name


def _check_path_arg(path):
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a directory (str or os.PathLike) or None; received path={path!r}")
    p = Path(path).expanduser()
    if p.is_file():
        raise ValueError(f"path must be a directory holding the data files, not a file; received path={str(path)!r}")
    try:
        st = p.stat()
    except (OSError, ValueError):  # missing (reported where the search looks), unreadable, bad name
        return p
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"path must be a directory holding the data files; received path={str(path)!r}, "
                         f"which is {file_kind(st.st_mode)}")
    return p


def search_dirs(name, path=None):
    """The directories searched for data set `name`, in order, as (label, Path) pairs."""
    dirs = []
    p = _check_path_arg(path)
    if p is not None:
        dirs.append(("path=", p))
    env = data_dir_env()
    if env is not None:
        dirs.append(("$CYNET_DATA_DIR/" + name, env / name))
        dirs.append(("$CYNET_DATA_DIR", env))
    dirs.append(("cache", cache_dir(name)))
    return dirs


def file_hash(path, algorithm):
    h = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with open_regular_file(path, "a data file") as f:  # a FIFO swapped in is refused, not waited on
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def hash_algorithm(expected):
    """Keras's rule: a 64-hex-digit hash is sha256, a 32-digit one md5."""
    if len(expected) == 64:
        return "sha256"
    if len(expected) == 32:
        return "md5"
    raise ValueError(f"unknown hash {expected!r}: expected 32 (md5) or 64 (sha256) hex digits")


def hash_matches(path, expected):
    return file_hash(path, hash_algorithm(expected)) == expected.lower()


def download(url, target, expected_hash, *, max_bytes, timeout=None):
    """Download `url` to `target` atomically; verify its hash. Returns `target` (a Path).

    Raises OSError (urllib.error.URLError, timeouts) when the network fails and ValueError when the
    body exceeds `max_bytes` or its hash differs from `expected_hash`; no partial file is left.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    algorithm = hash_algorithm(expected_hash)
    h = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            with urlopen(url, timeout=DOWNLOAD_TIMEOUT if timeout is None else timeout) as response:
                total = 0
                while True:
                    try:
                        block = response.read(_CHUNK)
                    except OSError:
                        raise
                    except Exception as e:  # http.client.IncompleteRead and friends: a broken connection
                        raise OSError(f"connection broken while reading {url}: {e!r}") from e
                    if not block:
                        break
                    total += len(block)
                    if total > max_bytes:
                        raise ValueError(f"download of {url} exceeds {max_bytes} bytes; refusing it")
                    h.update(block)
                    out.write(block)
        digest = h.hexdigest()
        if digest != expected_hash.lower():
            raise ValueError(f"corrupted or tampered download from {url}: {algorithm} is {digest}, "
                             f"expected the published {expected_hash}")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _variants(filename):
    """The names a file may have on disk: the canonical (usually .gz) name, then the raw one."""
    names = [filename]
    if filename.endswith(".gz"):
        names.append(filename[:-3])
    return names


def _find_in(directory, filename):
    for candidate in _variants(filename):
        p = directory / candidate
        if p.is_file():
            return p
    return None


def locate(name, title, files, hashes, mirrors, path=None, download_missing=True, max_bytes=1 << 28,
           howto=""):
    """Return {filename: Path} for every name in `files`, all from one directory.

    The first directory of `search_dirs(name, path)` that holds every file wins (gz or raw name),
    so files of different data sets are never mixed. Failing that, the files the cache lacks are
    downloaded into the cache when `download_missing` is true, from `mirrors`: base URLs tried in
    order (the URL is base + filename), or a dict {filename: (full URL, ...)}.
    Raises DatasetNotFoundError saying where it looked, and ValueError when a download fails its
    hash check on every mirror.
    """
    report = []
    cache = cache_dir(name)
    cached_bad = []
    for label, d in search_dirs(name, path):
        if not d.is_dir():
            report.append(f"  {d}  ({label}: no such directory)")
            continue
        found, missing = {}, []
        for fname in files:
            p = _find_in(d, fname)
            if p is not None and d == cache and p.name == fname and fname in hashes \
                    and not hash_matches(p, hashes[fname]):
                cached_bad.append(fname)
                p = None
            if p is None:
                missing.append(fname)
            else:
                found[fname] = p
        if not missing:
            return found
        report.append(f"  {d}  ({label}: missing {', '.join(missing)})")
    if data_dir_env() is None:
        report.append("  ($CYNET_DATA_DIR is not set)")

    download_errors = []
    hash_errors = []
    if download_missing:
        result = {}
        for fname in files:
            p = _find_in(cache, fname)
            if p is not None and fname not in cached_bad:
                result[fname] = p
                continue
            urls = mirrors.get(fname, ()) if isinstance(mirrors, dict) else [m + fname for m in mirrors]
            if not urls:
                download_errors.append(f"  {fname}: no download source is known for this file")
            for url in urls:
                try:
                    result[fname] = download(url, cache / fname, hashes[fname], max_bytes=max_bytes)
                    break
                except ValueError as e:
                    hash_errors.append(str(e))
                except OSError as e:  # URLError, HTTPError, timeouts, an unwritable cache
                    download_errors.append(f"  {url}: {getattr(e, 'reason', None) or e}")
            else:
                break
        if len(result) == len(files):
            return result
        if hash_errors and not download_errors:
            raise ValueError(f"{title}: every download failed its integrity check:\n  " + "\n  ".join(hash_errors))

    lines = [f"{title} files not found: {', '.join(files)} (gzipped or raw).", "Looked in, in this order:"]
    lines += report
    if cached_bad:
        lines.append(f"Cached files that failed their hash check: {', '.join(cached_bad)}.")
    if not download_missing:
        lines.append("Nothing was downloaded (download=False).")
    elif download_errors or hash_errors:
        lines.append("Download failed:")
        lines += download_errors + [f"  {e}" for e in hash_errors]
    lines.append("To provide the files, copy them into a directory DIR and either set the environment "
                 f"variable CYNET_DATA_DIR=DIR (the files in DIR/{name} or DIR itself) or pass path=DIR.")
    if howto:
        lines.append(howto)
    raise DatasetNotFoundError("\n".join(lines))
