"""The zoo: save, find, download, verify and load pretrained presets.

A preset is a directory holding `config.json` (the serialized model, compile state stripped),
`model.weights.h5` and `metadata.json`: the recipe that made it, the dataset and its
checksum, the seed, library versions, the metrics it reached on the test split, a few check
latents with their decoded outputs, and the sha256 of the other files; and its model card,
`README.md` with `samples.png` (`aae_keras.model_cards`). Every load
verifies those hashes.

A handle is one of:
- a zoo name from the zoo's `manifest.json` (`list()` names them): the shipped files in
  `<zoo>/presets/<name>/` when present, else the archive `<name>.tar.gz` from the zoo's base
  URL (`AAE_KERAS_ZOO_URL`; the manifest names none yet), checked against the manifest's sha256;
- a local preset directory;
- an `http(s)://` or `file://` URL of a `.tar.gz` or `.zip` archive, optionally ending in
  `#sha256=<hex>` (or pass `sha256=`);
- `hf://org/name` or `hf://org/name@REVISION` (a branch, tag or commit), a Hugging Face Hub
  repository holding a preset's files (needs the `hf` extra: huggingface_hub). Only those files
  are fetched, into `<cache>/hf` in huggingface_hub's layout, and verified like any preset;
  `HF_ENDPOINT` names another Hub or a mirror, and with `HF_HUB_OFFLINE=1` cached copies load.

The zoo is the package data `aae_keras/zoo` of an installed copy, else the source tree's
`zoo/`. Downloads stream (with a progress bar and a timeout, `AAE_KERAS_DOWNLOAD_TIMEOUT`)
into a file of their own in the cache `AAE_KERAS_HOME` (default `$KERAS_HOME/aae_keras`, i.e.
`~/.keras/aae_keras`); archives are extracted into a temporary directory, refused if any
member would land outside it or is a link or device, and renamed into place only when
complete. A failed download leaves nothing in the cache; concurrent loads of one URL each
download, and the first rename wins.

Example:
    >>> from aae_keras import presets
    >>> "digits_mmd_mog10" in presets.list()
    True
"""

import contextlib
import datetime
import gzip
import hashlib
import http.client
import json
import math
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np

import aae_keras
from aae_keras import files, model_cards

__all__ = [
    "load",
    "save",
    "resolve",
    "download",
    "pack",
    "list",
    "info",
    "manifest",
    "home",
    "download_timeout",
    "versions",
    "check_outputs",
    "verify_check",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "METADATA_FILE",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
HASHED_FILES = (CONFIG_FILE, WEIGHTS_FILE)  # metadata.json records their sha256
PACKAGE_DIR = Path(__file__).resolve().parent
# an installed copy ships the zoo as package data; a source tree keeps it at the top level
ZOO_DIR = next(
    (d for d in (PACKAGE_DIR / "zoo", PACKAGE_DIR.parent / "zoo") if (d / "manifest.json").is_file()),
    PACKAGE_DIR / "zoo",
)
DEFAULT_TIMEOUT = 60.0  # seconds a download waits for the server to connect or to send more data
CHECK_TOLERANCE = 1e-5  # decoded check latents must reproduce the stored outputs this closely


class PresetError(ValueError):
    """A preset handle that cannot be resolved, downloaded, verified or loaded."""


# --------------------------------------------------------------------------------- the zoo
def manifest():
    """The zoo manifest (`<ZOO_DIR>/manifest.json`) as a dict: {"base_url", "presets": {name: entry}}."""
    path = ZOO_DIR / "manifest.json"
    if not path.is_file():
        raise PresetError(
            f"the zoo manifest {path} is missing; reinstall aae-keras (pip install --force-reinstall aae-keras)."
        )
    return json.loads(path.read_text())


def list():  # noqa: A001 - the zoo's public name, as in the issue and KerasHub
    """Names of the presets in the zoo manifest, sorted.

    >>> len(list()) > 0
    True
    """
    return sorted(manifest()["presets"])


def info(name):
    """The manifest entry of a zoo preset (files, sizes, metrics, recipe, where to get it)."""
    presets = manifest()["presets"]
    if name not in presets:
        raise PresetError(f"unknown preset {name!r}; known presets: {', '.join(sorted(presets))}.")
    return presets[name]


def home():
    """The download cache: `AAE_KERAS_HOME`, else `$KERAS_HOME/aae_keras` (default ~/.keras/aae_keras)."""
    if os.environ.get("AAE_KERAS_HOME"):
        return os.path.abspath(os.path.expanduser(os.environ["AAE_KERAS_HOME"]))
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(keras_home, "aae_keras")


def base_url():
    """Where zoo archives are fetched from: `AAE_KERAS_ZOO_URL`, else the manifest's base_url."""
    url = os.environ.get("AAE_KERAS_ZOO_URL") or manifest().get("base_url")
    if not url:
        raise PresetError(
            "no download server is configured for the zoo yet: set AAE_KERAS_ZOO_URL to a mirror serving "
            "the archives that `aae-keras zoo build` writes, or load an hf://org/name handle or an "
            "http(s)/file URL of an archive (the shipped presets need no download)."
        )
    return url.rstrip("/")


def download_timeout(timeout=None):
    """Seconds a download waits for the server to connect or to send more data: `timeout`,
    else `AAE_KERAS_DOWNLOAD_TIMEOUT`, else 60.

    >>> download_timeout(2)
    2.0
    """
    name, value = (
        ("timeout", timeout)
        if timeout is not None
        else ("AAE_KERAS_DOWNLOAD_TIMEOUT", os.environ.get("AAE_KERAS_DOWNLOAD_TIMEOUT") or DEFAULT_TIMEOUT)
    )
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise PresetError(f"{name} must be a positive number of seconds, got {value!r}.")
    return seconds


# ------------------------------------------------------------------------------- resolving
def resolve(handle, sha256=None, timeout=None):
    """A verified local preset directory for `handle` (see the module docstring); `timeout`:
    see `download_timeout`.

    >>> resolve("no_such_preset")
    Traceback (most recent call last):
    ...
    aae_keras.presets.PresetError: unknown preset 'no_such_preset': not a zoo name, ... Known presets: digits_mmd_mog10, ...
    """
    handle = os.fspath(handle)
    scheme = urllib.parse.urlsplit(handle).scheme
    if scheme in ("http", "https", "file"):
        url, _, fragment = handle.partition("#")
        if fragment.startswith("sha256="):
            sha256 = sha256 or fragment[len("sha256=") :]
        return _fetch_archive(url, sha256, timeout=timeout)
    if scheme == "hf":
        return _from_hub(handle, timeout)
    if os.path.isdir(handle):
        return _verified(handle)
    presets = manifest()["presets"]
    if handle in presets:
        shipped = ZOO_DIR / "presets" / handle
        if shipped.is_dir():
            return _verified(shipped, presets[handle].get("files"))
        return download(handle, timeout=timeout)
    raise PresetError(
        f"unknown preset {handle!r}: not a zoo name, an existing directory, an http(s)/file URL or "
        f"an hf:// handle. Known presets: {', '.join(sorted(presets))}."
    )


def download(name, timeout=None):
    """Fetch zoo preset `name`'s archive from the zoo URL into the cache; its directory.

    Works for shipped presets too (to prefill a cache or test a mirror); `timeout`: see
    `download_timeout`."""
    entry = info(name)
    archive = entry.get("archive")
    if not archive:
        raise PresetError(
            f"preset {name!r} has a recipe but no published archive; build it with `aae-keras zoo build {name}`."
        )
    return _fetch_archive(f"{base_url()}/{archive['file']}", archive["sha256"], entry.get("files"), timeout)


def _fetch_archive(url, sha256, expected=None, timeout=None):
    """Download, check and safely extract an archive into the cache; its directory.
    `expected`: file records (the manifest's) the preset must also match."""
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    if not name.endswith((".tar.gz", ".tgz", ".zip")):
        raise PresetError(f"{url} is not a .tar.gz or .zip archive; preset URLs must point at one.")
    if sha256 is not None and (len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256.lower())):
        raise PresetError(f"sha256 must be 64 hex digits, got {sha256!r}.")
    sha256 = sha256.lower() if sha256 else None
    timeout = download_timeout(timeout)
    key = (sha256 or hashlib.sha256(url.encode()).hexdigest())[:16]
    target = os.path.join(home(), "presets", f"{name.split('.')[0]}-{key}")
    if os.path.isdir(target):
        return _verified(target, expected)
    # a file of its own: concurrent loads of one URL download side by side; _extract's rename settles it
    fd, archive_path = tempfile.mkstemp(
        prefix=f".{key}-", suffix=".part", dir=os.path.join(_writable_cache(), "archives")
    )
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, sha256, timeout)
        _extract(archive_path, url, target, expected)
        return target
    except OSError as error:
        raise PresetError(f"could not store {url} in the cache {home()}: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(archive_path)


def _download(url, out, sha256, timeout):
    """Stream `url` into the binary file `out` with a progress bar; check its length and sha256."""
    digest, received, total = hashlib.sha256(), 0, None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            print(f"Downloading {url}")
            progress = keras.utils.Progbar(total, unit_name="B")
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                digest.update(block)
                received += len(block)
                progress.update(received)
            if total is None:
                progress.update(received, finalize=True)
    except urllib.error.HTTPError as error:
        raise PresetError(f"could not download {url}: HTTP {error.code} {error.reason}.") from None
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError):
            raise PresetError(
                f"could not download {url}: the server did not answer within {timeout:g} s (the download timeout); "
                "if it is just slow, raise it with timeout=SECONDS or the environment variable AAE_KERAS_DOWNLOAD_TIMEOUT."
            ) from None
        raise PresetError(f"could not download {url}: {reason}") from None
    if total is not None and received != total:
        raise PresetError(f"could not download {url}: the connection ended after {received} of {total} bytes.")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise PresetError(
            f"{url} does not match its sha256 {sha256} (got {digest.hexdigest()}): corrupted, truncated or replaced."
        )


def _writable_cache():
    """The cache directory, created; a clear error if it cannot be written."""
    cache = home()
    try:
        os.makedirs(os.path.join(cache, "presets"), exist_ok=True)
        os.makedirs(os.path.join(cache, "archives"), exist_ok=True)
    except OSError as error:
        raise PresetError(
            f"cannot create the preset cache {cache}: {error}; set AAE_KERAS_HOME to a writable directory."
        ) from None
    if not os.access(cache, os.W_OK):
        raise PresetError(f"the preset cache {cache} is not writable; set AAE_KERAS_HOME to a writable directory.")
    return cache


def _extract(archive_path, source, target, expected=None):
    """Extract a .tar.gz/.zip (downloaded from `source`) into `target` via a temporary sibling:
    regular files and directories only, every member inside the target, the preset's hashes checked."""
    staging = tempfile.mkdtemp(prefix=".extract-", dir=os.path.dirname(target))
    try:
        try:
            if zipfile.is_zipfile(archive_path):
                with zipfile.ZipFile(archive_path) as archive:
                    for member in archive.infolist():
                        kind = stat.S_IFMT(member.external_attr >> 16)
                        _check_member(
                            member.filename,
                            staging,
                            is_link=kind == stat.S_IFLNK,
                            is_special=kind not in (0, stat.S_IFREG, stat.S_IFDIR),
                        )
                    archive.extractall(staging)
            else:
                with tarfile.open(archive_path, "r:*") as archive:
                    members = archive.getmembers()
                    for member in members:
                        _check_member(
                            member.name,
                            staging,
                            is_link=member.issym() or member.islnk(),
                            is_special=not (member.isfile() or member.isdir()),
                        )
                    archive.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
            raise PresetError(
                f"{source} is not a readable .tar.gz or .zip archive (corrupted or truncated?): {error}"
            ) from None
        root = _verified(_preset_root(staging), expected)
        try:
            os.replace(root, target)
        except OSError:
            if not os.path.isdir(target):  # else another process extracted the same archive first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_member(name, staging, is_link, is_special):
    if is_link:
        raise PresetError(f"archive member {name!r} is a link; preset archives may hold only regular files.")
    if is_special:
        raise PresetError(f"archive member {name!r} is not a regular file or directory; refused.")
    destination = os.path.realpath(os.path.join(staging, name))
    if os.path.isabs(name) or os.path.commonpath([destination, os.path.realpath(staging)]) != os.path.realpath(staging):
        raise PresetError(f"archive member {name!r} would be written outside the extraction directory; refused.")


def _preset_root(directory):
    """The directory holding config.json: `directory` itself or its single subdirectory."""
    if os.path.isfile(os.path.join(directory, CONFIG_FILE)):
        return directory
    entries = os.listdir(directory)
    if len(entries) == 1 and os.path.isfile(os.path.join(directory, entries[0], CONFIG_FILE)):
        return os.path.join(directory, entries[0])
    raise PresetError(f"the archive holds no preset: no {CONFIG_FILE} at its top level or in a single folder.")


_HUB_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, "README.md", "samples.png")  # what an hf:// load fetches


def _from_hub(handle, timeout=None):
    """The verified snapshot of the Hub repository `hf://org/name[@revision]`, fetched (only the
    preset's files, `_HUB_FILES`) into the cache `<home>/hf` in huggingface_hub's layout; a snapshot
    that fails verification is removed, with the blobs whose sha256 is wrong."""
    repo, at, revision = handle[len("hf://") :].partition("@")
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or (at and not revision):
        raise PresetError(
            f"{handle!r} is not a valid Hugging Face Hub handle: expected hf://org/name or "
            "hf://org/name@REVISION (REVISION: a branch, tag or commit), e.g. hf://my-org/my-preset@v1."
        )
    timeout = download_timeout(timeout)
    try:
        import huggingface_hub
    except ImportError:
        raise PresetError(
            f"{handle} is a Hugging Face Hub handle, which needs huggingface_hub: pip install 'aae-keras[hf]'."
        ) from None
    # read at call time (huggingface_hub reads HF_ENDPOINT once, when it is imported)
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or None
    cache = os.path.join(home(), "hf")
    try:
        directory = huggingface_hub.snapshot_download(
            repo_id=repo,
            revision=revision or None,
            cache_dir=cache,
            allow_patterns=[*_HUB_FILES],
            etag_timeout=timeout,
            endpoint=endpoint,
        )
    except Exception as error:  # noqa: BLE001 - huggingface_hub's errors become PresetErrors; others re-raise
        message = _hub_error_message(
            error, handle, repo, revision, endpoint or huggingface_hub.constants.ENDPOINT, cache
        )
        if message is None:
            raise
        raise PresetError(message) from None
    where = f"the Hub repository {repo}" + (f" at revision {revision!r}" if revision else "")
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE) if not os.path.isfile(os.path.join(directory, f))]
    try:
        if missing:
            raise PresetError(
                f"{handle} is not an aae-keras preset: {', '.join(missing)} missing from {where}; "
                "its maintainer must upload all the preset's files."
            )
        return _verified(directory)
    except PresetError:
        _discard_snapshot(directory)
        raise


def _hub_error_message(error, handle, repo, revision, endpoint, cache):
    """A PresetError message for an error of huggingface_hub's `snapshot_download`; None for any other."""
    import importlib

    try:
        errors = importlib.import_module("huggingface_hub.errors")
    except ImportError:  # huggingface_hub < 0.23
        errors = importlib.import_module("huggingface_hub.utils")

    def kind(*names):
        return isinstance(error, tuple(getattr(errors, n) for n in names if hasattr(errors, n)))

    cause = error.__cause__ or error.__context__
    login = "a private repository needs a login (hf auth login, or set HF_TOKEN)"
    unreachable = (
        "set HF_ENDPOINT to the address of your Hub or mirror if you use one; with HF_HUB_OFFLINE=1, "
        "presets already in the cache load without asking the Hub"
    )
    if kind("HFValidationError"):
        return f"{handle!r}: {repo!r} is not a valid Hub repository id ({error}); expected hf://org/name[@REVISION]."
    if kind("GatedRepoError"):
        return (
            f"the Hub repository {repo} ({endpoint}) is gated: accept its conditions on its page, then log in "
            "(hf auth login, or set HF_TOKEN)."
        )
    if kind("RepositoryNotFoundError"):
        return f"no repository {repo} on the Hugging Face Hub at {endpoint}: check the name in {handle}; {login}."
    if kind("RevisionNotFoundError"):
        return (
            f"the Hub repository {repo} has no revision {revision!r}: name an existing branch, tag or commit "
            f"(hf://{repo}@REVISION), or drop '@{revision}' for the default branch."
        )
    if kind("EntryNotFoundError") and not kind("LocalEntryNotFoundError"):
        url = str(getattr(getattr(error, "response", None), "url", "") or "")
        _, found, name = urllib.parse.unquote(urllib.parse.urlsplit(url).path).partition("/resolve/")
        name = name.partition("/")[2] if found else "a file"
        return (
            f"{handle} is not a complete aae-keras preset: the Hub repository {repo} lists {name} but does not "
            f"serve it (404 file not found at {url or endpoint}); its maintainer must upload it again."
        )
    if kind("IncompleteSnapshotError"):
        return (
            f"the cached copy of {handle} in {cache} is incomplete and the Hub at {endpoint} could not be "
            f"reached to complete it: check your connection and load it again; {unreachable}."
        )
    if kind("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        if (
            kind("OfflineModeIsEnabled")
            or isinstance(cause, getattr(errors, "OfflineModeIsEnabled", ()))
            or getattr(importlib.import_module("huggingface_hub.constants"), "HF_HUB_OFFLINE", False)
        ):
            return (
                f"{handle} is not in the cache {cache} and downloads are off (HF_HUB_OFFLINE is set): "
                "unset HF_HUB_OFFLINE (or set it to 0) to download it."
            )
        if isinstance(cause, getattr(errors, "FileMetadataError", ())):
            return (
                f"the server at {endpoint} does not answer like a Hugging Face Hub for {handle} ({cause}): "
                f"check HF_ENDPOINT."
            )
        if isinstance(cause, getattr(errors, "HfHubHTTPError", ())) and getattr(cause, "response", None) is not None:
            status = cause.response.status_code
            if status in (401, 403):
                return f"the Hub at {endpoint} refused {handle} (HTTP {status}): {login}."
            return (
                f"the Hugging Face Hub at {endpoint} answered HTTP {status} for {handle}, which is not in the "
                f"cache {cache}: try again later; {unreachable}."
            )
        reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        return (
            f"could not reach the Hugging Face Hub at {endpoint}{reason} to fetch {handle}, which is not in the "
            f"cache {cache}: check your connection; {unreachable}."
        )
    if kind("HfHubHTTPError"):
        status = getattr(getattr(error, "response", None), "status_code", "?")
        return (
            f"the Hugging Face Hub at {endpoint} answered HTTP {status} for {handle}: try again later; {unreachable}."
        )
    if isinstance(error, (ConnectionError, TimeoutError)) or type(error).__module__.split(".")[0] in (
        "httpx",
        "httpx2",
        "httpcore",
        "requests",
        "urllib3",
    ):
        return (
            f"could not download {handle} from the Hugging Face Hub at {endpoint} ({type(error).__name__}: "
            f"{error}): check your connection; {unreachable}."
        )
    if isinstance(error, OSError):
        return f"could not store {handle} in the cache {cache}: {error}; set AAE_KERAS_HOME to a writable directory."
    return None


def _discard_snapshot(directory):
    """Remove a Hub snapshot that failed verification from the cache, and the blobs of the files
    whose sha256 differs from metadata.json's record (else a retry would link them again)."""
    try:
        records = _read_json(os.path.join(directory, METADATA_FILE)).get("files", {})
        bad = [
            n
            for n, r in records.items()
            if os.path.isfile(os.path.join(directory, n)) and _sha256(os.path.join(directory, n)) != r.get("sha256")
        ]
    except (PresetError, AttributeError, OSError):
        bad = [METADATA_FILE]
    storage = os.path.realpath(os.path.join(directory, os.pardir, os.pardir))  # <cache>/models--org--name
    for name in bad:
        blob = os.path.realpath(os.path.join(directory, name))
        if os.path.commonpath([blob, storage]) == storage:
            with contextlib.suppress(OSError):
                os.remove(blob)
    shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------- verification
def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path):
    """{"sha256", "size"} of a file."""
    return {"sha256": _sha256(path), "size": os.path.getsize(path)}


def _verified(directory, expected=None):
    """`directory` after checking it is a preset whose files match their recorded sha256s
    (`expected`: the manifest's records, which also cover metadata.json)."""
    directory = os.fspath(directory)
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE) if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise PresetError(f"{directory} is not an aae-keras preset: {', '.join(missing)} missing.")
    records = dict(_read_json(os.path.join(directory, METADATA_FILE)).get("files", {}))
    records.update(expected or {})
    for name, record in records.items():
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or _sha256(path) != record["sha256"]:
            raise PresetError(
                f"{path} does not match the sha256 recorded for it ({record['sha256'][:12]}...): the preset is "
                "damaged or was modified; delete it (for a download, its folder in the cache) and fetch it again."
            )
    return directory


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise PresetError(f"cannot read {path}: {error}") from None


# ---------------------------------------------------------------------------- load and save
def load(handle, load_weights=True, expected_class=None, sha256=None, timeout=None):
    """The model stored in preset `handle`, compiled with its default optimizers.

    `expected_class`: raise unless the stored model is this class or a subclass (what
    `SomeModel.from_preset` passes). `load_weights=False` gives the architecture with fresh
    weights. `timeout`: see `download_timeout`.
    """
    import aae_keras.models  # noqa: F401 - registers the model classes (models imports this module)
    import aae_keras.sample_quality  # noqa: F401 - registers the zoo's classifier

    directory = resolve(handle, sha256=sha256, timeout=timeout)
    config = _read_json(os.path.join(directory, CONFIG_FILE))
    stored = keras.saving.get_registered_object(config.get("registered_name") or "")
    if stored is None:
        raise PresetError(f"{directory} holds the class {config.get('class_name')!r}, which is not an aae-keras model.")
    if expected_class is not None and not issubclass(stored, expected_class):
        raise PresetError(
            f"preset {handle!r} holds the model class {stored.__name__}, which is not {expected_class.__name__}; load it with "
            f"models.{stored.__name__}.from_preset or aae_keras.presets.load."
        )
    model = _rebuilt(directory, config, stored, load_weights)
    model.compile()
    metadata = _read_json(os.path.join(directory, METADATA_FILE))
    model.preset = {
        "handle": str(handle),
        "directory": directory,
        "name": metadata.get("name"),
        "dataset": (metadata.get("dataset") or {}).get("name"),
    }
    return model


def _rebuilt(directory, config, stored, load_weights):
    """The model of a preset's config (with its weights); a PresetError naming the file for a
    config or weights file that matches its hash but does not make a model (edited by hand, or
    written by an incompatible release)."""
    try:
        model = keras.saving.deserialize_keras_object(config)
    except Exception as error:  # noqa: BLE001 - Keras raises KeyError, TypeError, ValueError... on a bad config
        raise PresetError(
            f"{os.path.join(directory, CONFIG_FILE)} does not describe a {stored.__name__} ({type(error).__name__}: "
            f"{error}); the preset is damaged: delete it (for a download, its folder in the cache) and fetch or "
            "build it again."
        ) from None
    if load_weights:
        try:
            model.load_weights(os.path.join(directory, WEIGHTS_FILE))
        except Exception as error:  # noqa: BLE001 - h5py and Keras errors for weights that do not fit
            raise PresetError(
                f"{os.path.join(directory, WEIGHTS_FILE)} does not hold the weights of the model in its config.json "
                f"({type(error).__name__}: {error}); the preset is damaged: delete it and fetch or build it again."
            ) from None
    return model


def save(model, directory, name=None, overwrite=False, **metadata):
    """Write `model` as a preset directory (atomically); returns the metadata written.

    Keyword arguments (recipe, dataset, seed, metrics, ...) go into metadata.json, next to
    the versions, the sha256 of each file and `check`: decoded outputs of fixed latents. The
    model card (`model_cards.write`: README.md, and samples.png for a model that samples)
    is written beside them and hashed with them.
    """
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not overwrite:
        raise PresetError(f"{directory} exists; pass overwrite=True to replace it.")
    if not model.built:
        raise PresetError("the model is not built: train it (or call it on a batch) before saving a preset.")
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}-", dir=parent)
    try:
        config = keras.saving.serialize_keras_object(model)
        config.pop("compile_config", None)
        _write_json(config, os.path.join(staging, CONFIG_FILE))
        # weights of an uncompiled copy: model.save_weights would add the optimizers' state
        bare = keras.saving.deserialize_keras_object(config)
        bare.set_weights(model.get_weights())
        bare.save_weights(os.path.join(staging, WEIGHTS_FILE))
        full = {
            "name": name,
            "model_class": type(model).__name__,
            **metadata,
            "versions": versions(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "check": check_outputs(model),
        }
        card = model_cards.write(staging, full, model)  # README.md, and samples.png for a model that samples
        full["files"] = {f: file_record(os.path.join(staging, f)) for f in (*HASHED_FILES, *card)}
        _write_json(full, os.path.join(staging, METADATA_FILE))
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        files.replace_directory(staging, directory)
        return full
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_outputs(model, n=4, seed=0):
    """Fixed decoder inputs (`model.check_latents`) and their outputs: {"latents", "labels" (or None), "outputs"}."""
    z, labels = model.check_latents(n, seed)
    outputs = _decode(model, z, labels)
    return {"latents": z.tolist(), "labels": labels, "outputs": np.asarray(outputs, np.float64).tolist()}


def verify_check(model, check, tolerance=CHECK_TOLERANCE):
    """Largest difference between decoding `check["latents"]` and the stored outputs; raises above `tolerance`."""
    z = np.asarray(check["latents"], np.float32)
    outputs = _decode(model, z, check.get("labels"))
    difference = float(np.max(np.abs(outputs - np.asarray(check["outputs"]))))
    if difference > tolerance:
        raise PresetError(
            f"decoding the check latents differs from the stored outputs by {difference:.3g} "
            f"(tolerance {tolerance}); the weights do not match this preset."
        )
    return difference


def _decode(model, z, labels):
    """Decoded codes z, with their classes for a decoder that takes them (labels not None)."""
    return model.decode(z) if labels is None else model.decode(z, labels)


def pack(directory, archive_path):
    """Write a preset directory as a reproducible .tar.gz (files under `<folder name>/`, fixed
    times and owners); returns {"file", "sha256", "size"}."""
    directory = _verified(directory)
    folder = os.path.basename(os.path.abspath(directory))
    with files.atomic_path(archive_path) as tmp:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                if not os.path.isfile(path):
                    continue
                member = tarfile.TarInfo(f"{folder}/{name}")
                member.size, member.mode, member.mtime = os.path.getsize(path), 0o644, 0
                with open(path, "rb") as f:
                    tar.addfile(member, f)
    return {"file": os.path.basename(archive_path), **file_record(archive_path)}


def _write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
        f.write("\n")


def versions():
    """{"aae_keras", "keras", "backend", and the version of each of tensorflow, jax and torch
    that is installed} (what a preset's metadata records).

    >>> {"aae_keras", "keras", "backend"} <= set(versions())
    True
    """
    import importlib.metadata

    found = {"aae_keras": aae_keras.__version__, "keras": keras.__version__, "backend": keras.backend.backend()}
    for package in ("tensorflow", "jax", "torch"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found
