"""Opening files that must be regular files (private; shared by the readers of untrusted files).

`open_regular_file(path)` refuses a directory, FIFO, socket or device before it opens anything,
so reading a path can never block on a FIFO with no writer, wait on a terminal, or read forever
from `/dev/zero`. The check is made twice: `os.stat` before opening (so nothing with side effects
on open is ever opened), then `os.fstat` on the opened descriptor, which was opened with
`O_NONBLOCK` (and `O_NOCTTY`), so a path swapped for a FIFO or device between the two checks is
still refused without blocking. Symbolic links are followed: a link to a regular file is fine, a
link to a FIFO is refused like the FIFO.

Errors name the path and what it is:

- `NotARegularFileError` (an OSError and a ValueError, like `io.UnsupportedOperation`) for FIFOs,
  sockets and devices, or the `error` class the caller passes (a ValueError subclass of its own);
- `DirectoryNotFileError` (an IsADirectoryError and a ValueError) for directories;
- FileNotFoundError, PermissionError and other OSErrors from the system as they are (they name
  the path already).
"""
import errno
import os
import stat


class NotARegularFileError(OSError, ValueError):
    """The path names a FIFO, socket or device where a regular file is needed."""


class DirectoryNotFileError(NotARegularFileError, IsADirectoryError):
    """The path names a directory where a regular file is needed."""


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to block on
_OPEN_FLAGS = (os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


def file_kind(mode):
    """What `st_mode` describes, in words ("a directory", "a FIFO (named pipe)", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def check_regular(path, st, what="a regular file", error=NotARegularFileError):
    """Raise unless the `os.stat_result` `st` of `path` is a regular file's."""
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise DirectoryNotFileError(errno.EISDIR, f"is a directory, not {what}", os.fspath(path))
    raise error(f"{os.fspath(path)}: is {file_kind(st.st_mode)}, not {what}; refusing to open it")


def open_regular_file(path, what="a regular file", error=NotARegularFileError):
    """Open `path` for reading in binary mode, refusing anything but a regular file.

    Args:
        path: str or os.PathLike.
        what: what the file should be, for messages ("an IDX file", "a cynet file").
        error: the exception class raised for FIFOs, sockets and devices (called with one message).

    Returns:
        A buffered binary file object (blocking as usual, `name` = path) whose descriptor was
        checked with `os.fstat` to be a regular file.
    """
    check_regular(path, os.stat(path), what, error)

    def opener(name, flags):
        fd = os.open(name, _OPEN_FLAGS)
        try:
            check_regular(path, os.fstat(fd), what, error)
            if _NONBLOCK:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return open(path, "rb", opener=opener)
