"""Presets: save / pack / serve over real HTTP / download / verify / load round trips, the
cache, refused downloads and archives that leave nothing behind, and the shipped zoo."""

import contextlib
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from aae_keras import cli, models, presets
from conftest import http_server, tiny_model, tiny_variant

ZOO = Path(presets.ZOO_DIR)
SHIPPED = "digits_mmd_mog10"
KINDS = ("mmd", "supervised", "dim_reduction")


# ------------------------------------------------------------------------------ helpers
def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _decoded(model, kind):
    """Decoded images of fixed latents (classes 0, 1, ... for a class-and-style decoder)."""
    z = np.random.default_rng(7).normal(size=(6, model.latent_dim)).astype("float32")
    if kind == "supervised":
        return model.decode(z, np.arange(6) % model.num_classes)
    return model.decode(z)


def _entries(path):
    """Every entry of a directory, hidden ones included; [] when it does not exist."""
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _assert_cache_empty(home):
    assert _entries(home / "presets") == []
    assert _entries(home / "archives") == []
    # nothing else appeared in the cache either (e.g. a stray "../x" or a temp dir)
    assert set(_entries(home)) <= {"presets", "archives"}


CHUNK = 2048


class _ArchiveHandler(http.server.BaseHTTPRequestHandler):
    """Serves the server's `payload` for any path, CHUNK bytes at a time. With `pause_at`, the
    first request stops after that many bytes until a second one has begun, which then
    trickles (`delay` seconds between chunks): the second download starts in the middle of
    the first. With `cut`, only that many bytes go out (the length header announces all)."""

    def do_GET(self):
        server = self.server
        with server.lock:
            index, server.requests = server.requests, server.requests + 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(server.payload)))
        self.end_headers()
        sent = server.payload[: server.cut]
        for start in range(0, len(sent), CHUNK):
            if index == 0 and start == server.pause_at:
                server.second_began.wait(timeout=60)
            self.wfile.write(sent[start : start + CHUNK])
            self.wfile.flush()
            if index > 0:
                time.sleep(server.delay)
                server.second_began.set()  # after one chunk and a pause: its client has opened its file

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _archive_server(payload, pause_at=None, delay=0.0, cut=None):
    """An HTTP server on 127.0.0.1 serving `payload` through _ArchiveHandler; yields it (`.url`)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ArchiveHandler)
    server.payload, server.pause_at, server.delay, server.cut = payload, pause_at, delay, cut
    server.lock, server.second_began, server.requests = threading.Lock(), threading.Event(), 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _silent_server(hold=20.0):
    """A TCP server on 127.0.0.1 that accepts connections and never answers (it drops each
    one after `hold` seconds, so that a download without a timeout fails late instead of
    hanging the test run); yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                connection, _ = listener.accept()
                held.append(connection)
                threading.Timer(hold, connection.close).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for connection in held:
            connection.close()


def _tar_gz(path, members):
    """Write a .tar.gz from (TarInfo, bytes or None) pairs."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _preset_members(directory, folder="preset"):
    members = []
    for name in sorted(os.listdir(directory)):
        info = tarfile.TarInfo(f"{folder}/{name}")
        info.mode = 0o644
        members.append((info, Path(directory, name).read_bytes()))
    return members


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own cache; no proxy between us and 127.0.0.1; the real zoo URL."""
    path = tmp_path / "aae_home"
    monkeypatch.setenv("AAE_KERAS_HOME", str(path))
    monkeypatch.delenv("AAE_KERAS_ZOO_URL", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert presets.home() == str(path)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, served directory) of an HTTP server running for the whole module."""
    served = tmp_path_factory.mktemp("served")
    with http_server(served) as url:
        yield url, served


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """kind -> (model, preset directory, metadata) for three tiny models with perturbed weights
    (so that no fresh initialization could reproduce them by chance)."""
    root = tmp_path_factory.mktemp("sources")
    builders = {
        "mmd": lambda: tiny_model("mmd"),
        "supervised": lambda: tiny_variant("supervised"),
        "dim_reduction": lambda: tiny_variant("dim_reduction"),
    }
    out = {}
    rng = np.random.default_rng(123)
    for kind, build in builders.items():
        model = build()
        assert model.built
        for variable in model.trainable_weights:
            variable.assign(np.asarray(variable) + rng.normal(0, 0.3, variable.shape).astype("float32"))
        directory = root / kind
        metadata = model.save_to_preset(directory, recipe="test", seed=5)
        out[kind] = (model, directory, metadata)
    return out


@pytest.fixture(scope="module")
def shipped():
    return models.MMDAutoencoder.from_preset(SHIPPED)


# ------------------------------------------------------------------------------ 1. round trips
def test_saved_preset_records_its_files(sources):
    for kind, (model, directory, metadata) in sources.items():
        card = ["README.md", "samples.png"]  # the model card (model_cards.write)
        assert sorted(os.listdir(directory)) == sorted(
            [presets.CONFIG_FILE, presets.WEIGHTS_FILE, presets.METADATA_FILE, *card]
        )
        on_disk = json.loads((directory / presets.METADATA_FILE).read_text())
        assert on_disk == metadata
        assert metadata["model_class"] == type(model).__name__
        assert metadata["recipe"] == "test" and metadata["seed"] == 5
        assert sorted(metadata["files"]) == sorted([*presets.HASHED_FILES, *card])
        for name in metadata["files"]:
            assert metadata["files"][name] == {
                "sha256": _sha256(directory / name),
                "size": (directory / name).stat().st_size,
            }
        assert (metadata["check"]["labels"] is not None) == (kind == "supervised")
        assert presets.verify_check(model, metadata["check"]) <= presets.CHECK_TOLERANCE


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_tar_gz_over_http(sources, server, home, kind):
    model, directory, metadata = sources[kind]
    base, served = server
    record = presets.pack(directory, served / f"{kind}.tar.gz")
    assert record == {
        "file": f"{kind}.tar.gz",
        "sha256": _sha256(served / f"{kind}.tar.gz"),
        "size": (served / f"{kind}.tar.gz").stat().st_size,
    }
    # packing is reproducible: the same directory gives the same bytes
    assert presets.pack(directory, home.parent / "again.tar.gz")["sha256"] == record["sha256"]

    loaded = type(model).from_preset(f"{base}/{kind}.tar.gz", sha256=record["sha256"])
    assert type(loaded) is type(model)
    np.testing.assert_allclose(_decoded(loaded, kind), _decoded(model, kind), atol=1e-6)
    if kind == "dim_reduction":
        np.testing.assert_allclose(np.asarray(loaded.heads), np.asarray(model.heads), atol=1e-6)
    assert presets.verify_check(loaded, metadata["check"]) <= presets.CHECK_TOLERANCE
    # extracted into the cache under <stem>-<sha256 prefix>; the download itself is gone
    assert loaded.preset["directory"] == str(home / "presets" / f"{kind}-{record['sha256'][:16]}")
    assert _entries(home / "presets") == [f"{kind}-{record['sha256'][:16]}"]
    assert _entries(home / "archives") == []


@pytest.mark.parametrize("kind", ["mmd", "supervised"])
def test_round_trip_zip_over_http_with_fragment_hash(sources, server, home, kind):
    model, directory, metadata = sources[kind]
    base, served = server
    archive = served / f"{kind}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:  # files at the top level
        for name in sorted(os.listdir(directory)):
            zf.write(directory / name, arcname=name)
    loaded = presets.load(f"{base}/{kind}.zip#sha256={_sha256(archive)}")
    assert type(loaded) is type(model)
    np.testing.assert_allclose(_decoded(loaded, kind), _decoded(model, kind), atol=1e-6)
    assert presets.verify_check(loaded, metadata["check"]) <= presets.CHECK_TOLERANCE
    assert _entries(home / "presets") == [f"{kind}-{_sha256(archive)[:16]}"]
    assert _entries(home / "archives") == []


# ------------------------------------------------------------------------------ 2. the cache
def test_second_load_is_served_from_the_cache(sources, home, tmp_path):
    model, directory, _ = sources["mmd"]
    served = tmp_path / "private_served"
    served.mkdir()
    sha = presets.pack(directory, served / "cached.tar.gz")["sha256"]
    with http_server(served) as base:
        url = f"{base}/cached.tar.gz"
        first = models.MMDAutoencoder.from_preset(url, sha256=sha)
    # the server is shut down and its socket closed: only the cache can answer now
    second = models.MMDAutoencoder.from_preset(url, sha256=sha)
    assert second.preset["directory"] == first.preset["directory"]
    np.testing.assert_allclose(_decoded(second, "mmd"), _decoded(model, "mmd"), atol=1e-6)
    assert _entries(home / "archives") == []
    assert _entries(home / "presets") == [f"cached-{sha[:16]}"]
    # ... and the server really is gone: an uncached handle on it cannot be fetched
    with pytest.raises(presets.PresetError, match="could not download"):
        presets.resolve(url, sha256="0" * 64)
    assert _entries(home / "presets") == [f"cached-{sha[:16]}"]
    assert _entries(home / "archives") == []


# ------------------------------------------------------------------------------ 3. bad downloads
def test_corrupted_archive_with_sha256_is_refused(sources, server, home):
    base, served = server
    good = presets.pack(sources["mmd"][1], served / "flip_source.tar.gz")
    data = bytearray((served / "flip_source.tar.gz").read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    (served / "flipped.tar.gz").write_bytes(bytes(data))
    with pytest.raises(presets.PresetError, match="sha256"):
        presets.load(f"{base}/flipped.tar.gz", sha256=good["sha256"])
    _assert_cache_empty(home)


def test_truncated_archive_without_sha256_is_refused(sources, server, home):
    base, served = server
    presets.pack(sources["mmd"][1], served / "trunc_source.tar.gz")
    data = (served / "trunc_source.tar.gz").read_bytes()
    (served / "truncated.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(presets.PresetError, match="corrupted or truncated"):
        presets.load(f"{base}/truncated.tar.gz")
    _assert_cache_empty(home)


def test_wrong_sha256_is_refused(sources, server, home):
    base, served = server
    presets.pack(sources["mmd"][1], served / "wrong_sha.tar.gz")
    with pytest.raises(presets.PresetError, match="sha256"):
        presets.load(f"{base}/wrong_sha.tar.gz", sha256="ab" * 32)
    _assert_cache_empty(home)
    with pytest.raises(presets.PresetError, match="sha256"):
        presets.load(f"{base}/wrong_sha.tar.gz#sha256={'cd' * 32}")
    _assert_cache_empty(home)


def test_malformed_sha256_is_refused_before_downloading(server, home):
    base, _ = server
    with pytest.raises(presets.PresetError, match="64 hex digits"):
        presets.resolve(f"{base}/anything.tar.gz", sha256="xyz")
    _assert_cache_empty(home)


def test_upper_case_sha256_is_accepted(sources, server, home):
    base, served = server
    sha = presets.pack(sources["mmd"][1], served / "upper.tar.gz")["sha256"]
    directory = presets.resolve(f"{base}/upper.tar.gz", sha256=sha.upper())
    assert directory == str(home / "presets" / f"upper-{sha[:16]}")


def test_missing_url_is_refused(server, home):
    base, _ = server
    with pytest.raises(presets.PresetError, match="could not download"):
        presets.load(f"{base}/no_such_archive.tar.gz")
    _assert_cache_empty(home)


def test_not_an_archive_url_is_refused(server, home):
    base, _ = server
    with pytest.raises(presets.PresetError, match=r"\.tar\.gz or \.zip"):
        presets.load(f"{base}/model.weights.h5")
    _assert_cache_empty(home)


def test_archive_whose_files_do_not_match_their_metadata_is_refused(sources, server, home):
    base, served = server
    members = _preset_members(sources["mmd"][1])
    members = [(info, data + b"\0" if info.name.endswith(presets.WEIGHTS_FILE) else data) for info, data in members]
    _tar_gz(served / "tampered.tar.gz", members)
    with pytest.raises(presets.PresetError, match="damaged"):
        presets.load(f"{base}/tampered.tar.gz")
    _assert_cache_empty(home)


# ------------------------------------------------------------------------------ 4. unsafe archives
def _tar_dotdot(directory, path):
    evil = tarfile.TarInfo("../x")
    evil.mode = 0o644
    return _tar_gz(path, _preset_members(directory) + [(evil, b"pwned")])


def _tar_symlink(directory, path):
    link = tarfile.TarInfo("preset/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return _tar_gz(path, _preset_members(directory) + [(link, None)])


def _tar_hardlink(directory, path):
    link = tarfile.TarInfo("preset/hard")
    link.type, link.linkname = tarfile.LNKTYPE, "preset/config.json"
    return _tar_gz(path, _preset_members(directory) + [(link, None)])


def _zip_files(directory, zf):
    for name in sorted(os.listdir(directory)):
        zf.write(Path(directory, name), arcname=f"preset/{name}")


def _zip_dotdot(directory, path):
    with zipfile.ZipFile(path, "w") as zf:
        _zip_files(directory, zf)
        zf.writestr("../x", b"pwned")
    return path


def _zip_symlink(directory, path):
    with zipfile.ZipFile(path, "w") as zf:
        _zip_files(directory, zf)
        info = zipfile.ZipInfo("preset/passwd")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return path


UNSAFE = {
    "tar_dotdot": (_tar_dotdot, "tar.gz", "outside"),
    "tar_symlink": (_tar_symlink, "tar.gz", "link"),
    "tar_hardlink": (_tar_hardlink, "tar.gz", "link"),
    "zip_dotdot": (_zip_dotdot, "zip", "outside"),
    "zip_symlink": (_zip_symlink, "zip", "link"),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_unsafe_archive_is_refused_and_leaves_nothing(sources, server, home, case):
    build, suffix, message = UNSAFE[case]
    base, served = server
    archive = build(sources["mmd"][1], served / f"{case}.{suffix}")
    with pytest.raises(presets.PresetError, match=message):
        presets.load(f"{base}/{archive.name}", sha256=_sha256(archive))
    # "../x" from the extraction dir (<home>/presets/.extract-*) would be <home>/presets/x
    assert not (home / "presets" / "x").exists()
    assert not (home / "x").exists()
    _assert_cache_empty(home)


# ------------------------------------------------------------------------------ 5. damaged local preset
def test_modified_weights_are_detected(sources, tmp_path):
    model, directory, _ = sources["mmd"]
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    presets.load(copy)  # intact: loads
    with open(copy / presets.WEIGHTS_FILE, "ab") as f:
        f.write(b"\0")
    for load in (presets.load, models.MMDAutoencoder.from_preset, presets.resolve):
        with pytest.raises(presets.PresetError, match="sha256") as error:
            load(copy)
        assert "damaged" in str(error.value) and presets.WEIGHTS_FILE in str(error.value)
    with pytest.raises(presets.PresetError, match="damaged"):
        presets.pack(copy, tmp_path / "damaged.tar.gz")
    assert not (tmp_path / "damaged.tar.gz").exists()


# ------------------------------------------------------------------------------ 6. unknown names
def test_unknown_zoo_name_lists_known_presets():
    for call in (presets.load, presets.resolve, presets.info, presets.download, models.MMDAutoencoder.from_preset):
        with pytest.raises(presets.PresetError, match=SHIPPED) as error:
            call("no_such_preset_zz")
        assert "no_such_preset_zz" in str(error.value)
        assert isinstance(error.value, ValueError)
    assert SHIPPED in presets.list()
    assert presets.list() == sorted(presets.list())


# ------------------------------------------------------------------------------ 7. class checks
def test_from_preset_checks_the_class(shipped):
    with pytest.raises(presets.PresetError, match="MMDAutoencoder"):
        models.AdversarialAutoencoder.from_preset(SHIPPED)
    generic = models.LatentAutoencoder.from_preset(SHIPPED)
    assert type(generic) is models.MMDAutoencoder
    np.testing.assert_allclose(_decoded(generic, "mmd"), _decoded(shipped, "mmd"), atol=1e-6)

    fresh = models.MMDAutoencoder.from_preset(SHIPPED, load_weights=False)
    assert type(fresh) is models.MMDAutoencoder
    shipped_weights, fresh_weights = shipped.decoder.get_weights(), fresh.decoder.get_weights()
    assert [w.shape for w in fresh_weights] == [w.shape for w in shipped_weights]
    assert any(not np.allclose(a, b) for a, b in zip(fresh_weights, shipped_weights))
    check = json.loads((ZOO / "presets" / SHIPPED / presets.METADATA_FILE).read_text())["check"]
    with pytest.raises(presets.PresetError, match="do not match"):
        presets.verify_check(fresh, check)


# ------------------------------------------------------------------------------ 8. zoo mirror
def test_zoo_download_from_a_mirror(server, home, monkeypatch, shipped):
    base, served = server
    entry = presets.info(SHIPPED)
    record = presets.pack(ZOO / "presets" / SHIPPED, served / entry["archive"]["file"])
    assert record["sha256"] == entry["archive"]["sha256"]  # reproducible archive
    assert record["size"] == entry["archive"]["size"]

    monkeypatch.setenv("AAE_KERAS_ZOO_URL", base + "/")
    assert presets.base_url() == base
    directory = presets.download(SHIPPED)
    assert os.path.commonpath([os.path.realpath(directory), os.path.realpath(home)]) == os.path.realpath(home)
    assert _entries(home / "archives") == []
    for name, file_record in entry["files"].items():
        assert _sha256(Path(directory, name)) == file_record["sha256"]

    loaded = presets.load(directory)
    assert type(loaded) is models.MMDAutoencoder
    np.testing.assert_allclose(_decoded(loaded, "mmd"), _decoded(shipped, "mmd"), atol=1e-6)
    metadata = json.loads(Path(directory, presets.METADATA_FILE).read_text())
    assert presets.verify_check(loaded, metadata["check"]) <= presets.CHECK_TOLERANCE


# ------------------------------------------------------------------------------ 9. every shipped preset
def _shipped_entries():
    params = []
    for name, entry in sorted(presets.manifest()["presets"].items()):
        if not entry.get("shipped"):
            continue
        missing = not (ZOO / "presets" / name).is_dir()
        params.append(
            pytest.param(
                name, entry, id=name, marks=pytest.mark.skipif(missing, reason=f"zoo/presets/{name} not present")
            )
        )
    return params


@pytest.mark.parametrize("name,entry", _shipped_entries())
def test_shipped_preset_loads_offline(name, entry, home):
    directory = ZOO / "presets" / name
    if not directory.is_dir():
        pytest.skip(f"zoo/presets/{name} disappeared")
    cls = type(presets.load(name))
    assert cls.__name__ == entry["model_class"]
    model = cls.from_preset(name)
    assert type(model) is cls
    assert model.preset["directory"] == str(directory)
    metadata = json.loads((directory / presets.METADATA_FILE).read_text())
    assert metadata["model_class"] == entry["model_class"]
    assert presets.verify_check(model, metadata["check"]) <= presets.CHECK_TOLERANCE
    _assert_cache_empty(home)  # offline: nothing was downloaded


# ------------------------------------------------------------------------------ 10. Hugging Face
def test_hf_handle_without_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(presets.PresetError, match="pip install"):
        presets.load("hf://some-org/some-preset")


# ------------------------------------------------------------------------------ 11. save
def test_save_refuses_an_existing_directory(sources, tmp_path):
    model = sources["mmd"][0]
    parent = tmp_path / "parent"
    target = parent / "preset"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    with pytest.raises(presets.PresetError, match="overwrite=True"):
        presets.save(model, target)
    with pytest.raises(presets.PresetError, match="exists"):
        model.save_to_preset(target)
    assert _entries(target) == ["keep.txt"]
    assert _entries(parent) == ["preset"]  # no hidden staging dirs left behind

    metadata = presets.save(model, target, name="tiny", overwrite=True)
    assert metadata["name"] == "tiny"
    assert _entries(target) == sorted(
        [presets.CONFIG_FILE, presets.METADATA_FILE, presets.WEIGHTS_FILE, "README.md", "samples.png"]
    )
    assert _entries(parent) == ["preset"]
    loaded = presets.load(target)
    np.testing.assert_allclose(_decoded(loaded, "mmd"), _decoded(model, "mmd"), atol=1e-6)


# ------------------------------------------------------------------------------ 12. downloads
def test_two_processes_loading_one_url_both_succeed(sources, home):
    """The second download starts while the first is half done (the server holds the first
    until the second has begun); both processes load the model and the cache ends with one
    preset and no temporary files."""
    model, directory, _ = sources["mmd"]
    payload_path = home.parent / "concurrent.tar.gz"
    sha = presets.pack(directory, payload_path)["sha256"]
    code = (
        "import json, sys; from aae_keras import models; "
        "m = models.LatentAutoencoder.from_preset(sys.argv[1], sha256=sys.argv[2]); "
        "print(json.dumps({'class': type(m).__name__, 'directory': m.preset['directory']}))"
    )
    payload = payload_path.read_bytes()
    assert len(payload) > 4 * CHUNK
    with _archive_server(payload, pause_at=CHUNK * (len(payload) // CHUNK // 2), delay=0.2) as server:
        url = f"{server.url}/concurrent.tar.gz"
        env = {**os.environ, "AAE_KERAS_HOME": str(home)}
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", code, url, sha],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-2000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert server.requests == 2  # the downloads overlapped: each process fetched the archive
    assert (
        results[0]
        == results[1]
        == {"class": "MMDAutoencoder", "directory": str(home / "presets" / f"concurrent-{sha[:16]}")}
    )
    assert _entries(home / "presets") == [f"concurrent-{sha[:16]}"]
    assert _entries(home / "archives") == []
    loaded = presets.load(results[0]["directory"])  # verifies the hashes
    np.testing.assert_allclose(_decoded(loaded, "mmd"), _decoded(model, "mmd"), atol=1e-6)


def test_a_silent_server_times_out_and_leaves_nothing(home):
    with _silent_server() as url:
        start = time.monotonic()
        with pytest.raises(presets.PresetError, match="could not download") as error:
            presets.load(f"{url}/silent.tar.gz", timeout=2)
    message = str(error.value)
    assert f"{url}/silent.tar.gz" in message and "2 s" in message and "AAE_KERAS_DOWNLOAD_TIMEOUT" in message
    assert time.monotonic() - start < 10
    _assert_cache_empty(home)


def test_zoo_download_from_a_silent_mirror_times_out(home, monkeypatch, capsys):
    with _silent_server() as url:
        monkeypatch.setenv("AAE_KERAS_ZOO_URL", url)
        monkeypatch.setenv("AAE_KERAS_DOWNLOAD_TIMEOUT", "2")
        start = time.monotonic()
        try:
            code = cli.main(["zoo", "download", SHIPPED])
        except SystemExit as exit:
            code = exit.code
    assert time.monotonic() - start < 10
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{url}/{SHIPPED}.tar.gz" in err and "within 2 s" in err
    assert "AAE_KERAS_DOWNLOAD_TIMEOUT" in err
    _assert_cache_empty(home)


@pytest.mark.parametrize("value", [0, -1, "soon", float("nan"), float("inf")])
def test_bad_timeouts_are_refused(value, monkeypatch, home):
    with pytest.raises(presets.PresetError, match="timeout must be a positive number of seconds"):
        presets.resolve("http://127.0.0.1:9/never.tar.gz", timeout=value)
    monkeypatch.setenv("AAE_KERAS_DOWNLOAD_TIMEOUT", str(value))
    with pytest.raises(presets.PresetError, match="AAE_KERAS_DOWNLOAD_TIMEOUT must be a positive number"):
        presets.resolve("http://127.0.0.1:9/never.tar.gz")
    _assert_cache_empty(home)


def test_download_timeout_defaults_to_60_s(monkeypatch):
    monkeypatch.delenv("AAE_KERAS_DOWNLOAD_TIMEOUT", raising=False)
    assert presets.download_timeout() == presets.DEFAULT_TIMEOUT == 60
    monkeypatch.setenv("AAE_KERAS_DOWNLOAD_TIMEOUT", "7.5")
    assert presets.download_timeout() == 7.5 and presets.download_timeout(3) == 3


def test_a_cut_connection_is_refused_and_leaves_nothing(sources, home):
    archive = home.parent / "cut.tar.gz"
    presets.pack(sources["mmd"][1], archive)
    data = archive.read_bytes()
    with _archive_server(data, cut=len(data) // 2) as server:
        with pytest.raises(presets.PresetError, match="could not download"):
            presets.load(f"{server.url}/cut.tar.gz")
    _assert_cache_empty(home)


def test_file_urls_load_and_a_missing_file_is_refused(sources, home):
    model, directory, _ = sources["mmd"]
    archive = home.parent / "local.tar.gz"
    sha = presets.pack(directory, archive)["sha256"]
    loaded = presets.load(f"{archive.as_uri()}#sha256={sha}")
    np.testing.assert_allclose(_decoded(loaded, "mmd"), _decoded(model, "mmd"), atol=1e-6)
    assert _entries(home / "archives") == []
    with pytest.raises(presets.PresetError, match="could not download"):
        presets.load((home.parent / "missing.tar.gz").as_uri())
    assert _entries(home / "presets") == [f"local-{sha[:16]}"]


def test_an_unusable_cache_is_a_clear_error(server, monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("AAE_KERAS_HOME", str(blocker / "cache"))
    with pytest.raises(presets.PresetError, match="cannot create the preset cache .* set AAE_KERAS_HOME"):
        presets.load(f"{server[0]}/anything.tar.gz")


# ------------------------------------------------------------------------------ 13. no zoo server yet
def test_zoo_download_without_a_server_says_how_to_get_one(home):
    assert presets.manifest()["base_url"] is None  # no made-up host
    with pytest.raises(presets.PresetError, match="no download server is configured") as error:
        presets.download(SHIPPED)
    assert "AAE_KERAS_ZOO_URL" in str(error.value) and "hf://org/name" in str(error.value)
    _assert_cache_empty(home)
    assert presets.resolve(SHIPPED) == str(ZOO / "presets" / SHIPPED)  # shipped: no download needed


# ------------------------------------------------------------------------------ 14. registration
def test_load_registers_the_model_classes_itself(home):
    code = (
        "import sys, aae_keras.presets as p; m = p.load('digits_mmd_mog10'); print(type(m).__name__, m.sample(2).shape)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AAE_KERAS_HOME": str(home)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "MMDAutoencoder (2, 8, 8)"
