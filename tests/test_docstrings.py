"""Every docstring example in the library runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import aae_keras

MODULES = sorted(info.name for info in pkgutil.walk_packages(aae_keras.__path__, prefix="aae_keras."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
