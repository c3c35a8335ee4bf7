"""The README's Python examples run as written (with 1 epoch instead of 80)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        code = block.replace("epochs=80", "epochs=1").replace(
            "model.fit(x_train, batch_size=100)", "model.fit(x_train, epochs=1, batch_size=100, verbose=0)"
        )
        exec(compile(code, str(README), "exec"), namespace)
    assert (tmp_path / "ring.keras").exists()
