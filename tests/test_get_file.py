"""utils.get_file: Keras's cache layout, hash checks, re-downloads and archive extraction, on
file:// origins (no network), and archives that try to write outside their directory."""
import hashlib
import io
import os
import tarfile
import zipfile

import pytest

from cynet.utils import get_file


def _origin(path):
    return "file://" + str(path)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src" / "data.txt"
    path.parent.mkdir()
    path.write_bytes(b"hello cynet\n")
    return path


def test_downloads_once_into_the_cache(source, tmp_path, capsys):
    cache = tmp_path / "cache"
    got = get_file(origin=_origin(source), cache_dir=str(cache))
    assert got == str(cache / "datasets" / "data.txt") and open(got, "rb").read() == b"hello cynet\n"
    assert "Downloading data from" in capsys.readouterr().out
    source.write_bytes(b"changed\n")
    assert open(get_file(origin=_origin(source), cache_dir=str(cache)), "rb").read() == b"hello cynet\n"
    assert capsys.readouterr().out == ""                      # cached: not fetched again
    assert open(get_file(origin=_origin(source), cache_dir=str(cache), force_download=True), "rb").read() == b"changed\n"
    named = get_file("other.txt", _origin(source), cache_dir=str(cache), cache_subdir="sub")
    assert named == str(cache / "sub" / "other.txt")


def test_keras_home_is_the_default_cache(source, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert get_file(origin=_origin(source)) == str(tmp_path / "kh" / "datasets" / "data.txt")


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_hashes(source, tmp_path, algorithm):
    cache = str(tmp_path / "cache")
    digest = hashlib.new(algorithm, source.read_bytes()).hexdigest()
    path = get_file(origin=_origin(source), file_hash=digest, cache_dir=cache)   # "auto" tells them apart
    source.write_bytes(b"new version\n")
    with open(path, "wb") as f:
        f.write(b"stale")
    new = hashlib.new(algorithm, b"new version\n").hexdigest()
    assert open(get_file(origin=_origin(source), file_hash=new, cache_dir=cache), "rb").read() == b"new version\n"
    with pytest.raises(ValueError, match="hash does not match"):
        get_file(origin=_origin(source), file_hash="0" * 64, cache_dir=cache, force_download=True)
    assert not os.path.exists(path)                         # the corrupted download is not left behind
    with pytest.raises(ValueError, match="hash_algorithm"):
        get_file(origin=_origin(source), hash_algorithm="sha1", cache_dir=cache)


def test_extracts_tar_and_zip(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with tarfile.open(src / "set.tar.gz", "w:gz") as t:
        data = b"1,2,3\n"
        info = tarfile.TarInfo("set/train.csv")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(src / "words.zip", "w") as z:
        z.writestr("words/a.txt", "alpha")
    cache = str(tmp_path / "cache")
    out = get_file(origin=_origin(src / "set.tar.gz"), extract=True, cache_dir=cache)
    assert out.endswith("set.tar.gz") and open(os.path.join(out, "set", "train.csv")).read() == "1,2,3\n"
    out = get_file("words.zip", _origin(src / "words.zip"), extract=True, cache_dir=cache)
    assert out.endswith("words_extracted") and open(os.path.join(out, "words", "a.txt")).read() == "alpha"


def test_refuses_bad_input_and_escaping_archives(tmp_path, source):
    cache = str(tmp_path / "cache")
    with pytest.raises(ValueError, match="origin"):
        get_file("x.txt")
    with pytest.raises(ValueError, match="fname must be a file name"):
        get_file("a/b.txt", _origin(source), cache_dir=cache)
    with pytest.raises(OSError, match="URL fetch failure"):
        get_file(origin=_origin(tmp_path / "missing.txt"), cache_dir=cache)
    assert not os.path.exists(os.path.join(cache, "datasets", "missing.txt"))
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="outside"):
        get_file(origin=_origin(evil), extract=True, cache_dir=cache)
    assert not (tmp_path / "cache" / "datasets" / "escaped.txt").exists()
    with pytest.raises(ValueError, match="not an archive"):
        get_file("plain.txt", _origin(source), extract=True, cache_dir=cache)
