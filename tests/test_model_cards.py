"""Model cards: `model_cards.render` / `write` on real saved presets, and `aae-keras zoo info`."""

import json
import shlex
import shutil
import struct

import keras
import pytest
from test_zoo_cli import run  # cli.main's exit code, stdout and stderr

from aae_keras import model_cards, models, presets, priors, recipes
from conftest import tiny_model

DIGITS = "digits_mmd_mog10"
SECTIONS = (
    "What it is",
    "Recipe",
    "Data",
    "Budget",
    "Hardware",
    "Versions",
    "Metrics",
    "How to load",
    "How to rebuild",
    "License",
)
TRAIN = [
    "--model",
    "mmd",
    "--prior",
    "ring",
    "--latent-dim",
    "2",
    "--dataset",
    "digits",
    "--epochs",
    "3",
    "--hidden",
    "32",
    "--seed",
    "0",
    "--out",
    "runs/my run",
]  # the last needs shell quoting
METRICS = {
    "test_reconstruction": 21.5,
    "code_mmd2": 0.0013,
    "codes_near_mode": 0.85,
    "frechet_distance": 31.25,
    "novel_metric": 7,
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) of a PNG, from its IHDR chunk; fails unless the file is a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(model, preset directory, metadata read back) of a tiny MMD autoencoder saved as a preset."""
    model = tiny_model("mmd")
    directory = tmp_path_factory.mktemp("presets") / "tiny_mmd"
    recipe = {"name": "tiny_mmd", "description": "A tiny test preset.", "train": TRAIN, "shipped": False}
    presets.save(
        model,
        directory,
        name="tiny_mmd",
        description=recipe["description"],
        recipe=recipe,
        dataset={"name": "digits", "sha256": "ab" * 32, "train_size": 1437, "test_size": 360},
        seed=0,
        metrics=METRICS,
        results={"epochs": 3, "fit_seconds": 2.5},
        trained_on={"backend": "jax", "device": "NVIDIA H200"},
    )
    return model, directory, json.loads((directory / presets.METADATA_FILE).read_text())


def section(card, title):
    """The text under the heading `## title`, up to the next heading."""
    return card.split(f"\n## {title}\n\n", 1)[1].split("\n\n## ", 1)[0].strip()


def assert_sections(card):
    headings = [line[3:] for line in card.splitlines() if line.startswith("## ")]
    assert [h for h in headings if h in SECTIONS] == list(SECTIONS), headings


# ------------------------------------------------------------------------------ render
def test_render_a_saved_preset_has_every_section_and_metric(saved):
    _, _, metadata = saved
    card = model_cards.render(metadata)
    assert card.startswith("# tiny_mmd\n\nA tiny test preset.\n")
    assert_sections(card)
    assert "`MMDAutoencoder`" in card and "prior: ring (the paper's ring" in card and "latent dimension: 2" in card
    assert shlex.join(["aae-keras", "train", *TRAIN]) in card and "'runs/my run'" in card
    assert all(s in card for s in ("training images: 1437", "test images: 360", "ab" * 32))
    assert all(s in card for s in ("epochs: 3", "fit time: 2.5 s", "seed: 0"))
    assert section(card, "Hardware") == "- backend: jax\n- device: NVIDIA H200"
    assert f"keras: {keras.__version__}" in card and f"created: {metadata['created']}" in card
    for name, value in METRICS.items():
        assert f"| `{name}` | {value:.4g} | {model_cards.METRICS.get(name, '')} |" in card
    assert "binary cross-entropy summed over an image's pixels" in card and "2000 test codes" in card
    assert 'model = models.MMDAutoencoder.from_preset("tiny_mmd")' in card
    assert "aae-keras sample tiny_mmd --out samples.png" in card
    assert "aae-keras zoo build tiny_mmd [--data-dir DIR]" in card and "aae-keras zoo build tiny_mmd --check" in card
    assert "Apache-2.0" in card and "BSD-3-Clause / UCI" in card
    assert "![" not in card  # no samples image given
    assert model_cards.render(metadata) == card  # deterministic


def test_render_says_what_is_not_recorded_and_cards_a_classifier():
    recipe = {"kind": "classifier", "classifier": {"dataset": "fashion_mnist", "epochs": 4}}
    card = model_cards.render(
        {
            "name": "fashion_mnist_classifier",
            "model_class": "FashionClassifier",
            "recipe": recipe,
            "metrics": {"test_accuracy": 0.91},
        }
    )
    assert_sections(card)
    assert section(card, "Hardware") == "- backend: not recorded\n- device: not recorded"
    assert "training images: not recorded" in card
    assert "epochs: 4" in card and "| `test_accuracy` | 0.91 | the classifier's accuracy" in card
    assert "aae-keras sample" not in card and "sample_quality.FashionClassifier.from_preset" in card  # no decoder
    assert "Fashion-MNIST (Zalando Research): MIT" in card
    assert "MNIST (LeCun, Cortes and Burges): CC BY-SA 3.0" in model_cards.render({"dataset": {"name": "mnist"}})


# ------------------------------------------------------------------------------ write
def test_write_puts_a_card_and_samples_next_to_the_preset(saved, tmp_path):
    model, source, metadata = saved
    directory = tmp_path / "card"
    assert model_cards.write(directory, metadata, model, n=20) == ["README.md", "samples.png"]
    assert sorted(p.name for p in directory.iterdir()) == ["README.md", "samples.png"]  # no temp files
    card = (directory / "README.md").read_text()
    assert card == model_cards.render(metadata, samples="samples.png")
    assert "![decoded prior samples](samples.png)" in card
    width, height = png_size(directory / "samples.png")
    assert height == pytest.approx(10 / 2 * width, rel=0.05)  # 20 samples in 10 rows of 2


def test_a_saved_preset_carries_its_card_and_verifies_it(saved, tmp_path):
    model, source, metadata = saved
    card = {k: v for k, v in metadata.items() if k != "files"}
    assert (source / "README.md").read_text() == model_cards.render(card, samples="samples.png")
    assert {"README.md", "samples.png"} <= set(metadata["files"])
    directory = tmp_path / "preset"
    shutil.copytree(source, directory)
    (directory / "README.md").write_text("# edited\n")
    with pytest.raises(presets.PresetError, match="README.md does not match the sha256"):
        presets.load(directory)


def test_write_draws_one_row_per_class_for_a_class_conditional_model(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    model = models.LabelConditionedAutoencoder.create((8, 8), priors.gaussian_mixture(4, 2), 4, hidden=(32,))
    monkeypatch.setattr(type(model), "samples_by_class", True, raising=False)
    calls = []
    sample = model.sample
    monkeypatch.setattr(model, "sample", lambda n, y=None, seed=None: calls.append((n, y)) or sample(n, y=y, seed=seed))
    assert model_cards.write(tmp_path, {"name": "conditional"}, model, n=20) == ["README.md", "samples.png"]
    assert calls == [(5, 0), (5, 1), (5, 2), (5, 3)]
    width, height = png_size(tmp_path / "samples.png")
    assert height == pytest.approx(4 / 5 * width, rel=0.05)  # 4 class rows of 5


def test_write_without_a_sampling_model_writes_the_card_alone(tmp_path):
    assert model_cards.write(tmp_path / "new", {"name": "classifier"}, model=object()) == ["README.md"]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["README.md"]


# ------------------------------------------------------------------------------ zoo info
def test_zoo_info_prints_a_shipped_preset_card(capsys):
    code, out, err = run(["zoo", "info", DIGITS], capsys)
    assert code == 0, err
    assert out.startswith(f"# {DIGITS}\n")
    assert_sections(out)
    assert shlex.join(["aae-keras", "train", *recipes.load_recipe(DIGITS)["train"]]) in out
    for name, value in presets.info(DIGITS)["metrics"].items():
        assert f"| `{name}` | {value:.4g} |" in out
    assert f"Files: shipped in {presets.ZOO_DIR / 'presets' / DIGITS}" in out


def test_zoo_info_of_a_recipe_only_preset(capsys):
    code, out, err = run(["zoo", "info", "mnist_mmd_mog10"], capsys)
    assert code == 0, err
    assert_sections(out)
    assert "MNIST (LeCun, Cortes and Burges): CC BY-SA 3.0" in out and "Metrics\n\nnot recorded" in out
    assert out.rstrip().endswith("Files: recipe only, not built yet: `aae-keras zoo build mnist_mmd_mog10`")


def test_zoo_info_json_and_unknown_names(capsys):
    code, out, _ = run(["zoo", "info", DIGITS, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["recipe"]["train"] == recipes.load_recipe(DIGITS)["train"]
    code, _, err = run(["zoo", "info", "no_such_preset"], capsys)
    assert code == 2 and "unknown preset 'no_such_preset'" in err and DIGITS in err


def test_zoo_info_prints_a_shipped_readme_and_where_the_files_are(tmp_path, monkeypatch, capsys):
    zoo = tmp_path / "zoo"
    shipped = zoo / "presets" / DIGITS
    shipped.mkdir(parents=True)
    shutil.copy(presets.ZOO_DIR / "manifest.json", zoo / "manifest.json")
    shutil.copy(presets.ZOO_DIR / "presets" / DIGITS / presets.METADATA_FILE, shipped)
    (shipped / "README.md").write_text("# the shipped card\n")
    (shipped / "samples.png").write_bytes(PNG_SIGNATURE)
    monkeypatch.setattr(presets, "ZOO_DIR", zoo)
    code, out, err = run(["zoo", "info", DIGITS], capsys)
    assert code == 0, err
    assert out == f"# the shipped card\n\nFiles: shipped in {shipped}\nSamples: {shipped / 'samples.png'}\n"
    other = "fashion_mnist_aae_gauss8"  # in the manifest with an archive, but not in this zoo's presets/
    code, out, err = run(["zoo", "info", other], capsys)
    assert code == 0, err
    assert_sections(out)
    archive = presets.info(other)["archive"]["file"]
    assert out.rstrip().endswith(
        f"Files: download only, the archive {archive} from the zoo's download server: `aae-keras zoo download {other}`"
    )
    entry = presets.info(other)
    assert f"- device: {entry['trained_on']['device']}" in out and f"- epochs: {entry['budget']['epochs']}" in out
