"""The one guarded writer (and reader) of every file dlstudio puts in a run folder or beside a project.

A write never follows a link planted where the file goes, never reuses a
temporary name (a fixed ``NAME.tmp`` can be a planted link too), never leaves
half a file and never leaves its temporary file behind:

1. a new temporary file with an unguessable name is created in the target's
   folder with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (the same guarantees as
   ``tempfile.mkstemp``, but with the permissions of an ordinary new file,
   so that a project saved for the first time is not private by surprise);
2. the content is written through :data:`_write` (the one place bytes reach
   the disk: a full disk raises here), flushed and fsynced;
3. the temporary file replaces the target with ``os.replace`` (atomic; a
   hard link to the old file keeps the old bytes) and the folder is fsynced.

On any failure the temporary file is removed and the old file keeps its
bytes. Failures are :class:`WriteError` (one line naming the file) or
:class:`DiskFullError` ("disk full: N MB needed in FOLDER").

A target that is a symbolic link is refused, except for a project file the
person chose, which is saved through to the link's target (``follow_link``).

:class:`FileLock` is an advisory lock (``fcntl.flock``; ``msvcrt.locking`` on
Windows) held on a small lock file that records the holder's process id. The
kernel drops the lock when its process dies, so a lock left by a killed
process is simply taken over. Qt-free, torch-free.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from dlstudio.core.errors import DlstudioError

_WINDOWS = sys.platform == "win32"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BUFFER = 1 << 20

# Where bytes reach the disk (tests replace it to simulate a full disk at the real write call).
_write = os.write


class WriteError(DlstudioError):
    """A file could not be written; the message is one line naming the file, ``reason`` the why alone."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DiskFullError(WriteError):
    """The disk (or the user's quota) ran out while writing: "disk full: N MB needed in FOLDER"."""

    def __init__(self, folder: Path, needed: int) -> None:
        self.folder = Path(folder)
        self.needed = needed
        megabytes = max(1, math.ceil(needed / 1e6))
        super().__init__(f"disk full: {megabytes:,} MB needed in {self.folder}")
        self.reason = self.message


class ReadError(DlstudioError):
    """A file cannot be read safely (not a regular file, too large); one line naming the file, ``reason`` alone."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


# -- writing ---------------------------------------------------------------------------------------

Content = bytes | Callable[[IO[bytes]], None]


def write_file(path: str | os.PathLike[str], content: Content, *, follow_link: bool = False,
               refuse_read_only: bool = False, size_hint: int | Callable[[], int] | None = None) -> Path:
    """Replace ``path`` atomically with ``content`` (bytes, or a function writing to a binary stream).

    ``follow_link``: a target that is a symbolic link is written through to the
    file it points to (for a project the person chose); otherwise a link is
    refused. ``refuse_read_only``: an existing file without write permission is
    refused instead of replaced. ``size_hint``: the bytes the content needs (or
    a function computing it, called only after a full disk), for the message.
    Returns the file actually written (the link's target when followed).
    """
    path = Path(path)
    target = _resolve_target(path, follow_link)
    existing = _existing(target)
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise _error(target, "it is not a regular file")
        if refuse_read_only and _is_read_only(target, existing):
            raise _error(target, "the file is read-only (its permissions do not allow writing)")
    folder = target.parent
    handle, temporary = _create_temporary(target)
    sink = _Sink(handle)
    try:
        stream = io.BufferedWriter(sink, _BUFFER)
        if callable(content):
            content(stream)
        else:
            stream.write(content)
        stream.flush()
        os.fsync(handle)
        if existing is not None and not _WINDOWS:
            with suppress(OSError):
                os.fchmod(handle, stat.S_IMODE(existing.st_mode))  # keep the permissions of the file replaced
        sink.closed_fd = True
        os.close(handle)
        os.replace(temporary, target)
    except BaseException as error:
        if not sink.closed_fd:
            sink.closed_fd = True
            with suppress(OSError):
                os.close(handle)
        with suppress(OSError):
            os.unlink(temporary)
        cause = sink.error or (error if isinstance(error, OSError) else None)
        if cause is not None:
            if cause.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                needed = size_hint() if callable(size_hint) else size_hint
                if needed is None and not callable(content):
                    needed = len(content)
                raise DiskFullError(folder, max(needed or 0, sink.written)) from None
            raise _error(target, os_reason(cause)) from None
        raise
    sync_folder(folder)
    return target


def _error(path: Path, reason: str) -> WriteError:
    return WriteError(f"{path}: cannot write: {reason}", reason)


def write_text(path: str | os.PathLike[str], text: str, **options: Any) -> Path:
    """:func:`write_file` of UTF-8 text."""
    return write_file(path, text.encode("utf-8"), **options)


def json_text(value: Any, *, nonfinite: str = "null") -> str:
    """Valid JSON (``allow_nan=False``), indented, ending in a newline.

    ``nonfinite="null"`` writes NaN and infinities as null (a run's record must
    still be written when a metric went non-finite; readers take null as "no
    value"); ``"refuse"`` raises WriteError naming where the value is.
    """
    if nonfinite == "null":
        value = _nulled(value)
    else:
        where = _first_nonfinite(value, "")
        if where is not None:
            raise WriteError(f"{where or 'the value'}: not a finite number (JSON cannot hold NaN or infinity)")
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], value: Any, *, nonfinite: str = "null", **options: Any) -> Path:
    """Write ``value`` as valid JSON through :func:`write_file` (see :func:`json_text` for ``nonfinite``)."""
    return write_text(path, json_text(value, nonfinite=nonfinite), **options)


def _nulled(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _nulled(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulled(item) for item in value]
    return value


def _first_nonfinite(value: Any, where: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if isinstance(value, dict):
        items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for place, item in items:
        found = _first_nonfinite(item, place)
        if found is not None:
            return found
    return None


def _resolve_target(path: Path, follow_link: bool) -> Path:
    try:
        is_link = path.is_symlink()
    except OSError:
        is_link = False
    if not is_link:
        return path
    if not follow_link:
        raise _error(path, f"it is a symbolic link (to {_link_text(path)}); dlstudio does not write through "
                           "links in its folders")
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # a loop: realpath gives up on it
        raise _error(path, f"the link loops ({_link_text(path)})")
    if not target.parent.is_dir():
        raise _error(path, f"the link points to {target}, whose folder does not exist")
    return target


def _link_text(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "somewhere else"


def _existing(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _error(path, os_reason(error)) from None


def _is_read_only(path: Path, status: os.stat_result) -> bool:
    if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return True  # 0444: read-only for everybody, even for root (who would pass os.access)
    return not os.access(path, os.W_OK)


def _create_temporary(target: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    for _ in range(100):
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary  # the umask decides, as for any new file
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise DiskFullError(target.parent, 1) from None
            raise _error(target, os_reason(error)) from None
    raise _error(target, f"no free temporary name in {target.parent}")


class _Sink(io.RawIOBase):
    """A raw stream over a file descriptor that remembers the first OSError (torch hides it in a RuntimeError)."""

    def __init__(self, handle: int) -> None:
        super().__init__()
        self.handle = handle
        self.written = 0
        self.error: OSError | None = None
        self.closed_fd = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed_fd:  # a late flush (the stream collected after a failure) must not reach a reused descriptor
            raise OSError(errno.EBADF, "the file was already closed")
        try:
            count = _write(self.handle, data)
        except OSError as error:
            self.error = self.error or error
            raise
        self.written += count
        return count



def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; folders cannot be opened this way on Windows)."""
    with suppress(OSError, AttributeError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files an interrupted write left in ``folder`` (ours, and an older dlstudio's ``NAME.tmp``).

    Call it only while holding the folder's lock (another writer's file may be in progress otherwise).
    Links are removed, never followed. Returns the names removed.
    """
    removed = []
    with suppress(OSError):
        for entry in os.scandir(folder):
            if _TEMPORARY.match(entry.name) or entry.name.endswith((".pt.tmp", ".json.tmp", ".csv.tmp")):
                if entry.is_symlink() or entry.is_file(follow_symlinks=False):
                    with suppress(OSError):
                        os.unlink(entry.path)
                        removed.append(entry.name)
    return removed


# -- reading ---------------------------------------------------------------------------------------

def read_limited(path: str | os.PathLike[str], limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ReadError (naming the file) otherwise.

    A device (``/dev/zero``), a FIFO or a folder is refused before it is read,
    and the file is opened without blocking, so a FIFO never hangs the caller.
    FileNotFoundError and other OSErrors pass through for the caller to word.
    """
    path = Path(path)
    handle = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY)
    try:
        status = os.fstat(handle)
        if not stat.S_ISREG(status.st_mode):
            raise ReadError(path, f"it is {_kind(status.st_mode)}, not a regular file")
        if status.st_size > limit:
            raise ReadError(path, f"too large for a {what} ({_megabytes(status.st_size)}; the limit is "
                                  f"{_megabytes(limit)})")
        chunks, total = [], 0
        while True:
            chunk = os.read(handle, min(_BUFFER, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise ReadError(path, f"too large for a {what} (over {_megabytes(limit)})")
        return b"".join(chunks)
    finally:
        os.close(handle)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size:,} bytes"


def os_reason(error: OSError) -> str:
    """An OSError in plain words (never the exception's class name)."""
    return error.strerror or str(error) or "the system refused"


# -- locking ---------------------------------------------------------------------------------------

class LockHeld(DlstudioError):
    """The lock is held by another process (``pid``, None when it cannot be read)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class FileLock:
    """An advisory, exclusive lock on ``path`` (created if needed) recording the holder's pid.

    ``acquire(timeout=0)`` tries once; a positive timeout polls until then. On
    release the lock file is removed while still locked; a waiter that locked the
    removed file notices (its inode is no longer the path's) and tries again.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handle: int | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, timeout: float = 0.0) -> FileLock:
        """Take the lock or raise LockHeld (its pid) once ``timeout`` seconds passed; WriteError if impossible."""
        deadline = time.monotonic() + timeout
        while True:
            handle = self._open()
            if _try_lock(handle):
                if self._still_the_file(handle):
                    self._handle = handle
                    self._record_pid(handle)
                    return self
                _unlock(handle)
                os.close(handle)
                continue
            os.close(handle)
            if time.monotonic() >= deadline:
                pid = self.holder()
                raise LockHeld(f"{self.path} is locked by process {pid if pid is not None else '(unknown)'}", pid)
            time.sleep(0.05)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        if not _WINDOWS:
            with suppress(OSError):
                if self._still_the_file(handle):
                    os.unlink(self.path)
        _unlock(handle)
        with suppress(OSError):
            os.close(handle)

    def holder(self) -> int | None:
        """The pid recorded in the lock file (None when absent or unreadable)."""
        try:
            text = read_limited(self.path, 64, "lock file").decode("ascii", "replace")
            return int(text.split()[0])
        except (OSError, ValueError, IndexError, DlstudioError):
            return None

    def __enter__(self) -> FileLock:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock must not outlive its owner object
        with suppress(Exception):
            self.release()

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY, 0o666)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _error(self.path, "the lock file is a symbolic link") from None
            raise _error(self.path, f"cannot create the lock file: {os_reason(error)}") from None

    def _still_the_file(self, handle: int) -> bool:
        try:
            mine, current = os.fstat(handle), os.lstat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino)

    @staticmethod
    def _record_pid(handle: int) -> None:
        with suppress(OSError):
            data = f"{os.getpid()}\n".encode("ascii")
            if _WINDOWS:  # byte 0 is the locked one; readers on Windows may not read it
                os.lseek(handle, 0, os.SEEK_SET)
                os.write(handle, data)
                return
            os.ftruncate(handle, 0)
            os.pwrite(handle, data, 0)


def _try_lock(handle: int) -> bool:
    if _WINDOWS:
        import msvcrt

        try:
            os.lseek(handle, 0, os.SEEK_SET)
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _unlock(handle: int) -> None:
    with suppress(OSError):
        if _WINDOWS:
            import msvcrt

            os.lseek(handle, 0, os.SEEK_SET)
            msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_UN)
