"""Safe file writing: write to a temporary file next to the target, then rename onto it.

A reader never sees a half-written file, and a failed write (an exception, a full disk, a
kill) leaves the old file, or folder, exactly as it was, and no temporary one behind.

Example:
    >>> from aae_keras import files
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "metrics.json")
    >>> with files.atomic_path(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("{}")
    >>> open(target).read()
    '{}'

"""

import contextlib
import os
import shutil
import uuid

__all__ = ["atomic_path", "replace_directory", "zip_problem", "TEMP_PREFIX"]

TEMP_PREFIX = ".aae-tmp-"  # what every temporary name starts with (hidden; easy to find and remove)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path` that ends with `path`'s whole name (so suffixes such
    as `.weights.h5` that Keras insists on still fit); once the block succeeds, the written file
    is flushed to disk and renamed onto `path`. On an exception nothing is renamed and the
    temporary file is removed: `path` keeps its old content."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
    try:
        yield tmp
        if os.path.isdir(tmp):
            replace_directory(tmp, path)
        else:
            _fsync(tmp)
            os.replace(tmp, path)
            _fsync_directory(directory)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)


def replace_directory(staging, target):
    """Move the complete folder `staging` onto `target` (same parent folder), replacing what is
    there. The old `target` is renamed aside first and deleted only after the new one is in
    place, so at every moment `target` is either the old folder or the new one."""
    staging, target = os.path.abspath(staging), os.path.abspath(target)
    if not os.path.exists(target):
        os.replace(staging, target)
        return
    aside = os.path.join(
        os.path.dirname(target), f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-old-{os.path.basename(target)}"
    )
    os.replace(target, aside)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside, target)  # put the old one back
        raise
    if os.path.isdir(aside):
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.remove(aside)
    _fsync_directory(os.path.dirname(target))


def zip_problem(path):
    """What keeps the file `path` from being read as a zip archive (a `.keras` file is one), in
    words: "empty", "truncated" (it starts as a zip archive but its end is missing) or "not a zip
    archive"; None if it reads as one.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".keras") as f:
    ...     zip_problem(f.name)
    'empty'
    """
    import zipfile

    if zipfile.is_zipfile(path):
        return None
    if os.path.getsize(path) == 0:
        return "empty"
    with open(path, "rb") as f:
        start = f.read(4)
    return "truncated" if start == b"PK\x03\x04" else "not a zip archive"


def _fsync(path):
    with contextlib.suppress(OSError), open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_directory(directory):
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
