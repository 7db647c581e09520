"""Small file helpers shared across the library.

- Atomic writes (``atomic_open``): a killed run never leaves a half-written file. The data goes to a
  temp file ``.<name>.<pid>.<random>.tmp`` in the same folder, then is renamed over the target. A temp
  file left by a process that was SIGKILLed is removed by the next write to that folder
  (``remove_stale_temps``; ``mimic train`` also sweeps its run folder at start). A full disk, a
  read-only folder or a target folder that is a file raise ``OutputError`` (one line, naming the path).
- Safe reads of untrusted inputs (``read_input_bytes`` / ``read_input_text``): only regular files
  (a FIFO or a device such as ``/dev/zero`` is refused before a byte is read), at most
  ``max_input_bytes()``.
- Size ceilings that follow from the data (``check_cells``): a clip's frames x columns, a BVH's frames x
  joints, a resampled clip, ... must stay under ``max_cells()`` (env ``MIMIC_MAX_CELLS``).
- ``short_repr``: a bounded, recursion-safe repr of an untrusted value for error messages.
- ``run_dir_lock``: an advisory lock on ``<folder>/.lock`` so two runs never write into one folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import reprlib
import secrets
import stat
from pathlib import Path
from typing import IO, Iterator, Optional, Type, Union

from mimictools.errors import MimicToolsError, OutputError

PathLike = Union[str, Path]

TEMP_SUFFIX = ".tmp"
"""Temp files of atomic writes are named ``.<target name>.<pid>.<random hex>.tmp``."""

DEFAULT_MAX_CELLS = 50_000_000
"""Default ceiling on frames x columns of one clip (200 MB as float32; ~5 h of a 34-column humanoid
at 60 fps). Override with the environment variable ``MIMIC_MAX_CELLS``."""

DEFAULT_MAX_INPUT_BYTES = 1 << 30
"""Default ceiling on the size of one input file read into memory (1 GiB). Override with
``MIMIC_MAX_INPUT_BYTES``."""

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


# ---- limits ---------------------------------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise MimicToolsError(f"environment variable {name}={raw!r}: must be a positive integer") from None
    if value <= 0:
        raise MimicToolsError(f"environment variable {name}={raw!r}: must be a positive integer")
    return value


def max_cells() -> int:
    """Ceiling on numbers held for one clip (frames x columns); ``MIMIC_MAX_CELLS`` overrides it."""
    return _env_int("MIMIC_MAX_CELLS", DEFAULT_MAX_CELLS)


def max_input_bytes() -> int:
    """Ceiling on one input file's size; ``MIMIC_MAX_INPUT_BYTES`` overrides it."""
    return _env_int("MIMIC_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES)


def check_cells(
    rows: int,
    cols: int,
    where: str,
    what: str = "frames x columns",
    error: Type[MimicToolsError] = MimicToolsError,
) -> None:
    """Raise ``error`` unless ``rows * cols`` stays under ``max_cells()`` (checked before allocating)."""
    limit = max_cells()
    if rows < 0 or cols < 0 or rows * cols > limit:
        raise error(
            f"{where}: {what} = {rows:,} x {cols:,} = {rows * cols:,} numbers, above the limit of {limit:,} "
            "(set MIMIC_MAX_CELLS to raise it)"
        )


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40
for _attr in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_REPR, _attr, 6)


def short_repr(value: object, limit: int = 100) -> str:
    """A repr of an untrusted value that is short (<= ``limit`` chars) and never recurses deeply."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a stand-in object whose repr fails: name its type
        text = f"<{type(value).__name__}>"
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- reading untrusted inputs --------------------------------------------------------------------------


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_input_bytes(path: PathLike, error: Type[MimicToolsError] = MimicToolsError) -> bytes:
    """Read an untrusted input file. Only regular files (after following symlinks) of at most
    ``max_input_bytes()``; anything else raises ``error`` with one line naming the file.

    The file is opened non-blocking, so a FIFO without a writer is refused instead of hanging.
    """
    name = str(path)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise error(f"{name}: cannot read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{name}: is {_kind(st.st_mode)}, not a regular file; give a file")
        limit = max_input_bytes()
        if st.st_size > limit:
            raise error(
                f"{name}: {st.st_size:,} bytes, above the input limit of {limit:,} "
                "(set MIMIC_MAX_INPUT_BYTES to raise it)"
            )
        try:
            data = f.read(st.st_size + 1)  # read(n) allocates n bytes up front: ask for what is there
            if len(data) > st.st_size:  # still growing (a log being written): read on, up to the limit
                data += f.read(limit + 1 - len(data))
        except OSError as exc:
            raise error(f"{name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(f"{name}: grew past the input limit of {limit:,} bytes while being read")
    return data


def read_input_text(
    path: PathLike, error: Type[MimicToolsError] = MimicToolsError, what: str = "text"
) -> str:
    """``read_input_bytes`` decoded as UTF-8 (a BOM is dropped); not UTF-8 -> ``error``."""
    data = read_input_bytes(path, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 {what} (bad byte at offset {exc.start})") from None


def check_input_file(path: PathLike, error: Type[MimicToolsError] = MimicToolsError) -> None:
    """Raise ``error`` unless ``path`` is a readable regular file (for readers that open it themselves)."""
    name = str(path)
    try:
        st = os.stat(name)
    except OSError as exc:
        raise error(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{name}: is {_kind(st.st_mode)}, not a regular file; give a file")


# ---- atomic writes ---------------------------------------------------------------------------------------


def _file_mode() -> int:
    """What ``open()`` would give a new file under the current umask (mkstemp's files are 0600)."""
    try:
        with open("/proc/self/status") as f:  # reading the umask without changing it (thread safe)
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell): leave its files alone
    return True


def _temp_owner(name: str) -> Optional[int]:
    """PID that wrote temp file ``name`` (``.<target>.<pid>.<hex>.tmp``), or None if not one of ours."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    parts = name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 16:
        return None
    try:
        int(parts[2], 16)
    except ValueError:
        return None
    return int(parts[1])


def remove_stale_temps(folder: PathLike, target_name: Optional[str] = None) -> int:
    """Delete temp files of atomic writes in ``folder`` whose writer process is gone (killed mid-write).

    ``target_name``: only temps of that target. Returns how many were removed. Never raises.
    """
    removed = 0
    prefix = f".{target_name}." if target_name else "."
    try:
        names = os.listdir(str(folder))
    except OSError:
        return 0
    for name in names:
        if not name.startswith(prefix):
            continue
        pid = _temp_owner(name)
        if pid is None or _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(str(folder), name))
            removed += 1
    return removed


def output_error(path: PathLike, exc: OSError) -> OutputError:
    """An ``OutputError`` for a failed write: 'disk full' said plainly, else the OS's reason."""
    if exc.errno in _DISK_FULL:
        return OutputError(f"{path}: cannot write: the disk is full (free some space and run again)")
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file next to ``path`` for writing; on success fsync + rename it over ``path``.

    The file gets the mode ``open()`` would give it (0666 minus the umask). Failures to create, write
    or rename (disk full, read-only folder, a parent that is a file) raise ``OutputError``; the temp
    file is removed. Temps left by killed writers of the same target are removed first.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path.parent, exc) from None
    remove_stale_temps(path.parent, path.name)
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}{TEMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise output_error(path, exc) from None
    in_body = False
    try:
        os.chmod(tmp, _file_mode())
        with os.fdopen(fd, mode) as f:
            in_body = True
            yield f
            in_body = False
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, str(path))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # our own steps (flush, fsync, rename onto a folder...) and a full disk anywhere: one line
        if isinstance(exc, OSError) and (exc.errno in _DISK_FULL or not in_body):
            raise output_error(path, exc) from None
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def save_figure(fig, path: PathLike, dpi: int = 120) -> None:
    """Save a matplotlib Figure atomically; the format follows the suffix (png, pdf, svg)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi)


# ---- one run per folder --------------------------------------------------------------------------------

LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_dir_lock(folder: PathLike, what: str = "run folder") -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``<folder>/.lock`` (``fcntl.flock``) for the ``with`` block.

    Creates ``folder``. Raises ``OutputError`` when ``folder`` is a file, cannot be written, or another
    process holds the lock (naming its PID). The lock dies with the process (also on SIGKILL). Where
    ``fcntl`` is missing (Windows) the folder is only checked for writability and not locked.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: is a file, not a folder; give a folder for the {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc) from None
    lock_path = folder / LOCK_NAME
    try:
        fd = os.open(str(lock_path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise output_error(folder, exc) from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise output_error(lock_path, exc) from None
                os.lseek(fd, 0, os.SEEK_SET)
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                raise OutputError(
                    f"{folder}: {what} in use by another process (PID {holder}); wait for it to finish "
                    "or choose another folder"
                ) from None
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError as exc:
            raise output_error(lock_path, exc) from None
        yield folder
    finally:
        os.close(fd)  # closing releases the flock
