"""`get_file`: download a file once into Keras's cache (`~/.keras/datasets` by default), verify its
hash, and extract archives, as `keras.utils.get_file` does (the same cache, so files Keras
downloaded are found).

Archives are extracted safely: a member that would land outside the extraction directory
(an absolute path, `..`, a link pointing out) is refused with ValueError instead of written.
"""
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import Any

__all__ = ["get_file"]


def _keras_home() -> str:
    """Keras's cache root: $KERAS_HOME, else ~/.keras."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _hasher(algorithm: str, file_hash: str | None) -> Any:
    if algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5'; received hash_algorithm={algorithm!r}")
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None and len(file_hash) == 64):
        return hashlib.sha256()
    return hashlib.md5()


def _file_matches(path: str, file_hash: str, algorithm: str) -> bool:
    h = _hasher(algorithm, file_hash)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest() == str(file_hash)


def _inside(root: str, member: str) -> bool:
    target = os.path.realpath(os.path.join(root, member))
    return os.path.commonpath([os.path.realpath(root), target]) == os.path.realpath(root)


def _extract(path: str, into: str, archive_format: Any) -> bool:
    """Extract `path` into `into` if it is one of `archive_format` ("auto": tar then zip); False
    when it is none of them."""
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    for kind in formats:
        if kind not in ("tar", "zip"):
            raise ValueError(f"archive_format must be 'auto', 'tar', 'zip', a list of them or None; "
                             f"received archive_format={archive_format!r}")
        if kind == "tar" and tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for m in archive.getmembers():
                    if not _inside(into, m.name) or ((m.issym() or m.islnk()) and not _inside(
                            into, os.path.join(os.path.dirname(m.name), m.linkname))):
                        raise ValueError(f"{path}: archive member {m.name!r} would be written outside {into}")
                if sys.version_info >= (3, 12):
                    archive.extractall(into, filter="data")
                else:   # (the members were checked above)
                    archive.extractall(into)
            return True
        if kind == "zip" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if not _inside(into, name):
                        raise ValueError(f"{path}: archive member {name!r} would be written outside {into}")
                archive.extractall(into)
            return True
    return False


def get_file(fname: str | None = None, origin: str | None = None, untar: bool = False, md5_hash: str | None = None,
             file_hash: str | None = None, cache_subdir: str = "datasets", hash_algorithm: str = "auto",
             extract: bool = False, archive_format: Any = "auto", cache_dir: str | None = None,
             force_download: bool = False) -> str:
    """Download `origin` into the cache unless it is there already; return the local path (the
    extraction directory when extracting).

    The file lands in `cache_dir/cache_subdir/fname` (`~/.keras/datasets/` by default, or a
    `.keras` directory under the temporary directory when that is not writable). A cached file
    whose hash does not match `file_hash` is downloaded again; a downloaded one that does not
    match raises ValueError (and is removed). With `extract`, a tar or zip archive is unpacked into
    `<name>` (or `<name>_extracted` when `fname` has an extension), which is returned.

    Args:
        fname: The local file name (no directories); `None`: the last part of `origin`'s path.
        origin: The URL to download from (any scheme urllib opens, `file://` included).
        untar: Deprecated (Keras): extract as a tar archive.
        md5_hash: Deprecated (Keras): an md5 `file_hash`.
        file_hash: The expected sha256 or md5 hex digest of the file.
        cache_subdir: The subdirectory of the cache (an absolute path is used as it is).
        hash_algorithm: `"auto"` (sha256 for a 64-character hash, else md5), `"sha256"` or `"md5"`.
        extract: Whether to extract the file as an archive.
        archive_format: `"auto"` (tar, then zip), `"tar"`, `"zip"`, a list of them, or None.
        cache_dir: The cache root; `None`: `$KERAS_HOME` or `~/.keras`.
        force_download: Download even when the file is already cached.
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    _hasher(hash_algorithm, file_hash)   # (checks the name)
    base = os.path.expanduser(os.fspath(cache_dir) if cache_dir is not None else _keras_home())
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)

    given = fname
    fname = os.fspath(fname) if fname is not None else ""
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. "
                             "Please specify the `fname` argument.")
    elif os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError(f"fname must be a file name, not a path (give the directory as cache_dir); "
                         f"received fname={fname!r}")
    extraction_dir = None
    if extract or untar:
        if given and "." in fname:
            target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[:fname.find('.')]}_extracted")
        else:
            extraction_dir, target = os.path.join(datadir, fname), os.path.join(datadir, f"{fname}_archive")
    else:
        target = os.path.join(datadir, fname)

    download = force_download or not os.path.exists(target)
    if not download and file_hash is not None and not _file_matches(target, file_hash, hash_algorithm):
        print(f"A local file was found, but its {hash_algorithm} hash does not match {file_hash}: "
              "downloading it again.")
        download = True
    if download:
        print(f"Downloading data from {origin}")
        partial = target + ".part"
        try:
            urllib.request.urlretrieve(origin, partial)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if os.path.exists(partial):
                os.remove(partial)
            raise OSError(f"URL fetch failure on {origin}: {exc}") from exc
        os.replace(partial, target)   # (a failed download never leaves a file that looks cached)
        if file_hash is not None and not _file_matches(target, file_hash, hash_algorithm):
            os.remove(target)
            raise ValueError(f"Incomplete or corrupted file detected. The {hash_algorithm} file hash does not "
                             f"match the provided value of {file_hash}.")
    if extraction_dir is None:
        return target
    if os.path.isdir(extraction_dir) and not download:
        return extraction_dir
    if os.path.isdir(extraction_dir):
        shutil.rmtree(extraction_dir)
    if not _extract(target, extraction_dir, "tar" if untar else archive_format):
        raise ValueError(f"{target} is not an archive of the format {archive_format!r}; nothing was extracted")
    return extraction_dir
