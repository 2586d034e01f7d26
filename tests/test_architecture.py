"""The package's structure: imports point down the levels of docs/architecture.md, and
the diagram there is the one the code gives."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def architecture():
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "docs" / "architecture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_import_points_down(architecture):
    assert architecture.upward_imports() == []


def test_every_part_of_the_package_has_a_level(architecture):
    assert set(architecture.part_imports()) == set(architecture.LEVELS)


def test_the_diagram_in_the_docs_matches_the_code(architecture):
    text = architecture.DOC.read_text()
    assert architecture.document_with_diagram(text) == text, "run: python docs/architecture.py"


def test_imports_are_read_wherever_they_are_written(architecture, tmp_path, monkeypatch):
    source = tmp_path / "pconv" / "inference" / "sample.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        textwrap.dedent(
            """
            import numpy
            from pconv.masks import read_mask
            from . import windows
            from ..train.loop import Trainer

            def late():
                import pconv.serve.app
            """
        )
    )
    monkeypatch.setattr(architecture, "ROOT", tmp_path)  # module names are relative to ROOT
    parts = {architecture.part_of(module) for module in architecture._imported_modules(source)}
    assert parts == {"masks", "inference", "train", "serve"}


def test_an_upward_import_is_reported(architecture, monkeypatch):
    monkeypatch.setattr(architecture, "part_imports", lambda: {"files": {"train"}, "train": set()})
    assert architecture.upward_imports() == ["files (level 0) imports train (level 5)"]
