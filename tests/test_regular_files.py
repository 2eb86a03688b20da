"""cynet.utils._files.open_regular_file: readers of untrusted paths open only regular files."""
import os
import threading

import pytest

from cynet.utils import _files
from cynet.utils._files import DirectoryNotFileError, NotARegularFileError, file_kind, open_regular_file

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    yield p
    try:  # release a reader stuck in open(), should there be one
        os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def opened_in_thread(path, **kw):
    box = {}

    def target():
        try:
            with open_regular_file(path, **kw) as f:
                box["data"] = f.read()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), f"open_regular_file blocked on {path}"
    return box


def test_regular_file_and_link_to_it(tmp_path):
    p = tmp_path / "data.bin"
    p.write_bytes(b"\x00\x01\x02")
    link = tmp_path / "link"
    link.symlink_to(p)
    for src in (p, str(p), link):
        with open_regular_file(src) as f:
            assert f.read() == b"\x00\x01\x02"
            assert f.name == os.fspath(src) and os.get_blocking(f.fileno())


def test_refuses_fifo_link_directory_device(tmp_path, fifo):
    link = tmp_path / "to-fifo"
    link.symlink_to(fifo)
    for path in (fifo, link):
        error = opened_in_thread(path, what="an IDX file")["error"]
        assert type(error) is NotARegularFileError and isinstance(error, ValueError) and isinstance(error, OSError)
        assert str(error) == f"{path}: is a FIFO (named pipe), not an IDX file; refusing to open it"
    error = opened_in_thread(tmp_path, what="a cynet file")["error"]
    assert isinstance(error, DirectoryNotFileError) and isinstance(error, IsADirectoryError)
    assert isinstance(error, ValueError) and error.filename == str(tmp_path)
    assert str(error) == f"[Errno 21] is a directory, not a cynet file: {str(tmp_path)!r}"
    if os.path.exists("/dev/zero"):
        assert "is a character device" in str(opened_in_thread("/dev/zero")["error"])
    with pytest.raises(FileNotFoundError):
        open_regular_file(tmp_path / "absent")


def test_caller_error_class(fifo):
    class FormatError(ValueError):
        pass

    error = opened_in_thread(fifo, what="a cynet file", error=FormatError)["error"]
    assert type(error) is FormatError and str(fifo) in str(error)


def test_path_swapped_for_a_fifo_after_stat(tmp_path, fifo, monkeypatch):
    # The race: os.stat sees a regular file, then the path names a FIFO when it is opened. The
    # descriptor is opened without blocking and checked with fstat, so this is refused too.
    regular = tmp_path / "regular"
    regular.write_bytes(b"x")
    real_stat = os.stat
    monkeypatch.setattr(_files.os, "stat", lambda p, *a, **k: real_stat(regular) if os.fspath(p) == str(fifo)
                        else real_stat(p, *a, **k))
    opened = []
    real_open = os.open
    monkeypatch.setattr(_files.os, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    box = opened_in_thread(fifo)
    monkeypatch.undo()
    assert opened and "FIFO" in str(box["error"]), box
    assert isinstance(box["error"], NotARegularFileError)


def test_file_kind():
    assert file_kind(os.stat(".").st_mode) == "a directory"
    assert file_kind(os.stat(__file__).st_mode) == "a regular file"
