"""The repository itself: what a clone carries (a GPU run copies the whole checkout plus 30 MB
of Fashion-MNIST within a 64 MiB limit, so the tracked files stay under 30 MB)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRACKED_BUDGET = 30e6  # bytes


def tracked_files():
    """Paths of the files git tracks (committed or staged); None outside a git checkout."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z", "--cached"], cwd=ROOT, capture_output=True, timeout=60)
    except OSError:
        return None
    if listing.returncode != 0:
        return None
    return [ROOT / name for name in listing.stdout.decode().split("\0") if name]


def test_tracked_files_stay_under_30_mb():
    paths = tracked_files()
    if paths is None:
        pytest.skip("not a git checkout")
    sizes = {p.relative_to(ROOT).as_posix(): p.stat().st_size for p in paths if p.is_file()}
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
    assert total < TRACKED_BUDGET, (
        f"the tracked files take {total / 1e6:.1f} MB, over {TRACKED_BUDGET / 1e6:.0f} MB; "
        f"make large presets download-only. Largest: {largest}"
    )
    print(f"tracked files: {total / 1e6:.1f} MB in {len(sizes)} files")


def test_untracked_zoo_archives_are_ignored():
    """`zoo build` writes archives to zoo/archives/, which a mirror serves; git must not carry them."""
    if tracked_files() is None:
        pytest.skip("not a git checkout")
    check = subprocess.run(["git", "check-ignore", "-q", "zoo/archives/x.tar.gz"], cwd=ROOT, timeout=60)
    assert check.returncode == 0, "add zoo/archives/ to .gitignore"
