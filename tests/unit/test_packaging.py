"""A wheel carries every run-time resource: each file under resources/ is declared as a data file."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the data-files table is the same on 3.10

ROOT = Path(__file__).resolve().parents[2]


def test_every_resource_file_is_declared_for_the_wheel() -> None:
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    declared = {
        Path(p).resolve()
        for patterns in data_files.values()
        for pat in patterns
        for p in glob.glob(str(ROOT / pat))
    }
    present = {p.resolve() for p in (ROOT / "resources").rglob("*") if p.is_file()}
    assert present, "resources/ is empty"
    assert present <= declared, sorted(str(p.relative_to(ROOT)) for p in present - declared)
    for target in data_files:  # where fusereview.resources looks in an installed wheel
        assert target.startswith("share/fusereview/resources/")


def test_resources_dir_finds_a_wheels_data_files(tmp_path, monkeypatch) -> None:
    import sys

    from fusereview import resources

    installed = tmp_path / "share" / "fusereview" / "resources"
    (installed / "demo_model").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(
        resources, "__file__", str(tmp_path / "site-packages" / "fusereview" / "resources.py")
    )
    monkeypatch.delenv("FUSEREVIEW_RESOURCES", raising=False)
    assert resources.resources_dir() == installed
