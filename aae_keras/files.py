"""Safe file writing: write to a temporary file next to the target, then rename onto it.

A reader never sees a half-written file, and a failed write leaves the old file (or none).

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
import uuid

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path` (same suffix); os.replace it onto `path` on success."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp{os.path.splitext(name)[1]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
