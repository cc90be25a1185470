"""Fixtures of the GUI tests: a small synthetic project with stored (deterministic) predictions."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_samples import add_second_category, open_window, store_fake_predictions

from fusereview.core.coco import load_dataset
from fusereview.core.project import Project
from fusereview.core.synthetic import generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5-image 256 px synthetic dataset with two categories (made once; projects copy nothing)."""
    ds = generate_dataset(tmp_path_factory.mktemp("qt") / "ds", images=5, size=256, seed=3)
    add_second_category(ds)
    return ds


@pytest.fixture
def project(tmp_path: Path, dataset: Path) -> Project:
    """A fresh project of the dataset with stored predictions."""
    p = Project.create(tmp_path / "proj", load_dataset(dataset))
    store_fake_predictions(p)
    yield p
    p.close()


@pytest.fixture
def settings(tmp_path: Path):
    """A throw-away QSettings file (never the user's)."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, project: Project, settings):
    """The main window with the project open, shown offscreen."""
    w = open_window(qtbot, project, settings)
    yield w
    if w.isVisible():
        w.close()


@pytest.fixture(scope="session", autouse=True)
def gui_thread_gc(qapp):
    """As the application does (fusereview.qt.gc_guard): garbage is collected in the GUI thread only."""
    from fusereview.qt.gc_guard import install

    yield install()
