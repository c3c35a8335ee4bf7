"""Build zoo presets side by side, one process per recipe (the paper-budget zoo on the GPU machine).

    KERAS_BACKEND=jax python benchmarks/build_zoo.py --data-dir .gpu-data --jobs 4 --out $OUT \
        fashion_mnist_semisup100_mmd_paper fashion_mnist_semisup100_aae_paper
    python benchmarks/build_zoo.py --merge DIR      # back here: take the built entries and archives

Every recipe named (shell patterns such as 'fashion_mnist_*_paper' work) is built with
`aae-keras zoo build NAME` in its own process, at most `--jobs` at once, its log in
`logs/NAME.log` under `--out` (else under zoo/build/); the manifest takes every entry (`recipes` locks it). With `--out DIR`, the
manifest, the logs and the archives of the presets built are copied to DIR: what a device run
brings back (at most 8 files of 16 MiB each per call, so about 7 paper-size presets).
`--merge DIR` copies the manifest entries of the archives found in DIR into this checkout's
manifest and the archives into zoo/archives/, checking each archive's sha256 first.
"""

import argparse
import concurrent.futures
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "zoo"


def recipe_names(patterns):
    """The recipe names matching any of the shell patterns, sorted; an unknown name is an error."""
    known = sorted(p.stem for p in (ZOO / "recipes").glob("*.json"))
    names = sorted({n for pattern in patterns for n in fnmatch.filter(known, pattern)})
    unmatched = [p for p in patterns if not fnmatch.filter(known, p)]
    if unmatched:
        raise SystemExit(f"build_zoo: no recipe matches {', '.join(unmatched)}; recipes: {', '.join(known)}")
    return names


def build(name, data_dir, logs):
    """`aae-keras zoo build NAME` in a process of its own; (name, return code, seconds)."""
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "aae_keras.cli",
        "zoo",
        "build",
        name,
        "--verbose",
        "2",
        *(["--data-dir", str(data_dir)] if data_dir else []),
    ]
    with open(logs / f"{name}.log", "w") as log:
        code = subprocess.run(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        ).returncode
    return name, code, time.perf_counter() - start


def build_all(names, data_dir, jobs, out):
    logs = Path(out) / "logs" if out else ZOO / "build" / "logs"  # zoo/build/ is ignored by git
    logs.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda n: build(n, data_dir, logs), names))
    for name, code, seconds in results:
        print(
            f"{name}: {'built' if code == 0 else f'FAILED (exit {code}, see logs/{name}.log)'} in {seconds:.0f} s",
            flush=True,
        )
    if out:
        shutil.copy2(ZOO / "manifest.json", Path(out) / "manifest.json")
        for name, code, _ in results:
            if code == 0:
                shutil.copy2(ZOO / "archives" / f"{name}.tar.gz", Path(out) / f"{name}.tar.gz")
    return 0 if all(code == 0 for _, code, _ in results) else 1


def merge(directory):
    """Take the manifest entries and archives a build run brought back in `directory`."""
    sys.path.insert(0, str(ROOT))
    from aae_keras import recipes

    built = json.loads((Path(directory) / "manifest.json").read_text())["presets"]
    (ZOO / "archives").mkdir(exist_ok=True)
    for archive in sorted(Path(directory).glob("*.tar.gz")):
        name = archive.name[: -len(".tar.gz")]
        entry = built[name]
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != entry["archive"]["sha256"]:
            raise SystemExit(f"build_zoo: {archive} does not match its manifest sha256; not merged.")
        shutil.copy2(archive, ZOO / "archives" / archive.name)
        recipes._update_manifest(name, entry)
        print(f"merged {name}: {entry.get('trained_on')}, {entry.get('budget')}, {entry.get('metrics')}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="*", help="recipe names or shell patterns")
    parser.add_argument("--data-dir", default=None, help="the dataset's IDX files (for Fashion-MNIST)")
    parser.add_argument("--jobs", type=int, default=2, help="builds at once (default: %(default)s)")
    parser.add_argument("--out", default=None, help="copy the manifest, logs and archives built here")
    parser.add_argument("--merge", default=None, metavar="DIR", help="merge what a build run brought back, and exit")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge)
    if not args.recipes:
        parser.error("name at least one recipe (or pattern), or --merge DIR")
    return build_all(recipe_names(args.recipes), args.data_dir, max(1, args.jobs), args.out)


if __name__ == "__main__":
    sys.exit(main())
