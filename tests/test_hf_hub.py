"""`hf://org/name[@revision]` preset handles, loaded for real through huggingface_hub from a
local Hub (tests/hub_server.py) that HF_ENDPOINT points at: download and cache, revisions,
missing files, unknown repositories, tampered files, unreachable servers, malformed handles."""

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

from hub_server import Hub  # noqa: E402

from aae_keras import presets  # noqa: E402
from conftest import tiny_model  # noqa: E402

PRESET_FILES = (presets.CONFIG_FILE, presets.WEIGHTS_FILE, presets.METADATA_FILE, "README.md", "samples.png")


def _decoded(model):
    z = np.random.default_rng(7).normal(size=(5, model.latent_dim)).astype("float32")
    return np.asarray(model.decode(z))


def _preset_files(model, directory, seed):
    """The files of `model` saved as a preset, its weights perturbed with `seed` first."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:
        variable.assign(np.asarray(variable) + rng.normal(0, 0.3, variable.shape).astype("float32"))
    presets.save(model, directory, name=f"hub_test_{seed}")  # with its model card
    return {name: (Path(directory) / name).read_bytes() for name in PRESET_FILES}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """(hub, base URL, {"main"|"v1": (files, decoded outputs)}, {"main"|"v1": commit}) of a running Hub
    with `org/tiny` (main, and a tag v1 with other weights) plus broken repositories."""
    root = tmp_path_factory.mktemp("hub")
    model = tiny_model("mmd")
    main = _preset_files(model, root / "main", seed=1)
    main_out = _decoded(model)
    v1 = _preset_files(model, root / "v1", seed=2)
    v1_out = _decoded(model)
    assert not np.allclose(main_out, v1_out)
    server = Hub()
    commits = {"v1": server.add("org/tiny", {**v1, "extra/big.bin": b"x" * 4096, "notes.txt": b"not a preset file"})}
    server.tag("org/tiny", "v1", commits["v1"])
    commits["main"] = server.add("org/tiny", {**main, "extra/big.bin": b"y" * 4096})
    server.add("org/noweights", {n: d for n, d in main.items() if n != presets.WEIGHTS_FILE})
    server.add("org/lost", main)
    server.unserved.add(("org/lost", presets.WEIGHTS_FILE))
    server.add("org/tampered", main)
    server.add("org/down", main)
    server.failing["org/down"] = 503
    with server.serve() as url:
        yield server, url, {"main": (main, main_out), "v1": (v1, v1_out)}, commits


@pytest.fixture
def env(hub, tmp_path, monkeypatch):
    """HF_ENDPOINT at the Hub, a fresh cache (AAE_KERAS_HOME); the Hub."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", hub[1])
    monkeypatch.setenv("AAE_KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return hub


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _snapshots(tmp_path, repo):
    folder = tmp_path / "home" / "hf" / f"models--{repo.replace('/', '--')}" / "snapshots"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ------------------------------------------------------------------------------ loading and the cache
def test_load_in_a_fresh_process_with_hf_endpoint(hub, tmp_path):
    """The honest path: HF_ENDPOINT set before huggingface_hub is imported, nothing patched."""
    server, url, revisions, _ = hub
    script = (
        "import json, sys, numpy as np\n"
        "from aae_keras import presets\n"
        "model = presets.load('hf://org/tiny')\n"
        "z = np.random.default_rng(7).normal(size=(5, model.latent_dim)).astype('float32')\n"
        "decoded = np.asarray(model.decode(z)).tolist()\n"
        "print(json.dumps({'decoded': decoded, 'directory': model.preset['directory']}))\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": url,
        "AAE_KERAS_HOME": str(tmp_path / "home"),
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    before = server.count("GET", "/resolve/")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["decoded"], revisions["main"][1], rtol=0, atol=1e-6)
    directory = Path(result["directory"])
    assert directory.is_relative_to(tmp_path / "home" / "hf")
    assert sorted(os.listdir(directory)) == sorted(PRESET_FILES)  # not extra/ nor notes.txt
    assert server.count("GET", "/resolve/") - before == len(PRESET_FILES)


def test_load_then_reuse_the_cache(env, tmp_path, monkeypatch):
    server, url, revisions, commits = env
    model = presets.load("hf://org/tiny")
    np.testing.assert_allclose(_decoded(model), revisions["main"][1], rtol=0, atol=1e-6)
    assert model.preset["handle"] == "hf://org/tiny"
    assert _snapshots(tmp_path, "org/tiny") == [commits["main"]]
    downloads, heads = server.count("GET", "/resolve/"), server.count("HEAD", "/resolve/")
    # again: the Hub is asked which commit main is, and no file is downloaded again
    np.testing.assert_allclose(_decoded(presets.load("hf://org/tiny")), revisions["main"][1], rtol=0, atol=1e-6)
    assert (server.count("GET", "/resolve/"), server.count("HEAD", "/resolve/")) == (downloads, heads)
    # and with the Hub unreachable, the cached copy loads
    monkeypatch.setenv("HF_ENDPOINT", _closed_port_url())
    np.testing.assert_allclose(_decoded(presets.load("hf://org/tiny")), revisions["main"][1], rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ revisions
def test_a_named_revision_and_a_commit(env, tmp_path):
    server, url, revisions, commits = env
    np.testing.assert_allclose(_decoded(presets.load("hf://org/tiny@v1")), revisions["v1"][1], rtol=0, atol=1e-6)
    assert _snapshots(tmp_path, "org/tiny") == [commits["v1"]]
    # a commit id: the same snapshot, without asking the Hub anything
    before = len(server.requests)
    directory = presets.resolve(f"hf://org/tiny@{commits['v1']}")
    assert len(server.requests) == before
    assert Path(directory).name == commits["v1"]
    assert (Path(directory) / presets.WEIGHTS_FILE).read_bytes() == revisions["v1"][0][presets.WEIGHTS_FILE]


def test_an_unknown_revision_is_named_and_leaves_nothing(env, tmp_path):
    with pytest.raises(presets.PresetError, match=r"org/tiny has no revision 'v9'.*branch, tag or commit"):
        presets.load("hf://org/tiny@v9")
    assert _snapshots(tmp_path, "org/tiny") == []
    assert not list((tmp_path / "home").rglob(presets.CONFIG_FILE))


# ------------------------------------------------------------------------------ broken repositories
def test_a_repository_without_the_weights(env, tmp_path):
    with pytest.raises(
        presets.PresetError,
        match=r"not an aae-keras preset: model\.weights\.h5 missing from "
        r"the Hub repository org/noweights",
    ):
        presets.load("hf://org/noweights")
    assert _snapshots(tmp_path, "org/noweights") == []


def test_a_listed_file_the_hub_does_not_serve(env):
    with pytest.raises(presets.PresetError, match=r"org/lost lists model\.weights\.h5 but does not serve it"):
        presets.load("hf://org/lost")


def test_an_unknown_repository(env):
    with pytest.raises(
        presets.PresetError,
        match=r"no repository org/nothing-here on the Hugging Face Hub at "
        r"http://127\.0\.0\.1:\d+.*hf auth login",
    ):
        presets.load("hf://org/nothing-here")


def test_tampered_bytes_fail_the_sha256_check_and_are_not_kept(env, tmp_path):
    server, url, revisions, _ = env
    genuine = revisions["main"][0][presets.WEIGHTS_FILE]
    flipped = bytearray(genuine)
    flipped[len(flipped) // 2] ^= 0xFF
    server.tampered[("org/tampered", presets.WEIGHTS_FILE)] = bytes(flipped)
    try:
        with pytest.raises(presets.PresetError, match=r"model\.weights\.h5 does not match the sha256 recorded"):
            presets.load("hf://org/tampered")
    finally:
        del server.tampered[("org/tampered", presets.WEIGHTS_FILE)]
    assert _snapshots(tmp_path, "org/tampered") == []
    blobs = tmp_path / "home" / "hf" / "models--org--tampered" / "blobs"
    assert hashlib.sha256(flipped).hexdigest() not in {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in blobs.iterdir()
    }
    # the server fixed: the next load fetches the genuine file again
    np.testing.assert_allclose(_decoded(presets.load("hf://org/tampered")), revisions["main"][1], rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ no server, offline
def test_an_unreachable_hub(env, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", _closed_port_url())
    with pytest.raises(
        presets.PresetError, match=r"could not reach the Hugging Face Hub at .*HF_ENDPOINT.*HF_HUB_OFFLINE"
    ):
        presets.load("hf://org/tiny")


def test_a_hub_that_answers_an_http_error(env):
    with pytest.raises(presets.PresetError, match=r"answered HTTP 503 for hf://org/down.*try again later.*HF_ENDPOINT"):
        presets.load("hf://org/down")


def test_offline_mode(env, monkeypatch):
    import huggingface_hub.constants

    presets.resolve("hf://org/tiny")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert Path(presets.resolve("hf://org/tiny")).is_dir()  # cached
    with pytest.raises(presets.PresetError, match=r"not in the cache .* downloads are off \(HF_HUB_OFFLINE is set\)"):
        presets.resolve("hf://org/tiny@v1")


# ------------------------------------------------------------------------------ handles
@pytest.mark.parametrize("handle", ["hf://justone", "hf://a/b/c", "hf://org/", "hf:///name", "hf://org/name@", "hf://"])
def test_malformed_handles(handle):
    with pytest.raises(presets.PresetError, match=r"expected hf://org/name or hf://org/name@REVISION"):
        presets.load(handle)
