"""Bad input and bad environments around a project: import, export, the database, read-only media.

Each test is a defect of issue 11 that once ended in a traceback or a silently wrong result.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from coco_samples import make_roboflow_dataset, make_split, tree_hash
from test_project import box_mask, make_project

from fusereview.cli import main
from fusereview.core import project_export, project_schema
from fusereview.core.coco import load_dataset, validate_dataset
from fusereview.core.errors import DiskFullError
from fusereview.core.project import Project, ProjectError
from fusereview.core.records import Detection

SPLITS = ("train", "valid", "test")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------- defect 4


def test_a_json_named_dots_is_a_safe_split_and_exports_inside_its_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    make_split(folder, 2, json_name="...json")
    dataset = load_dataset(folder / "...json")
    assert list(dataset.splits) == ["dataset"]
    assert any("not a safe folder name" in q.message for q in dataset.quirks)

    project_dir = tmp_path / "proj"
    assert main(["import", str(folder / "...json"), "--project", str(project_dir)]) == 0
    out = tmp_path / "out"
    out.mkdir()
    bystander = out / "_annotations.coco.json"
    bystander.write_text('{"not": "ours"}')
    assert main(["export", str(project_dir), "--out", str(out / "target")]) == 0
    assert bystander.read_text() == '{"not": "ours"}'
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "_annotations.coco.json",
        "target/dataset/_annotations.coco.json",
    ]
    capsys.readouterr()


def test_export_refuses_a_split_that_would_leave_the_target(tmp_path: Path) -> None:
    """A project imported before split names were sanitised: the export checks every path."""
    project = make_project(tmp_path)
    with project.db.write() as conn:
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute("UPDATE images SET split = '..' WHERE split = 'test'")
        conn.execute("UPDATE splits SET name = '..' WHERE name = 'test'")
    out = tmp_path / "out"
    (out / "target").mkdir(parents=True)
    before = tree_hash(out)
    with pytest.raises(ProjectError, match="outside the export folder"):
        project.export_coco(out / "target")
    assert tree_hash(out) == before
    project.close()


# ---------------------------------------------------------------------------------- defect 7


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[Project, Path, dict[str, bytes]]]:
    """A project exported once, then changed: (project, export folder, its files before)."""
    project = make_project(tmp_path)
    out = tmp_path / "export"
    project.export_coco(out)
    project.add_annotation(project.images("train")[0].id, 1, bbox=[1, 1, 2, 2])
    yield project, out, _files(out)
    project.close()


def test_export_when_the_disk_is_full_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exported: tuple[Project, Path, dict[str, bytes]]
) -> None:
    project, out, before = exported
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 100))  # type: ignore[attr-defined]
    with pytest.raises(DiskFullError, match=r"disk full: \d+ MB needed at "):
        project.export_coco(out)
    assert _files(out) == before
    # a new target: no empty split folders are left behind
    with pytest.raises(DiskFullError):
        project.export_coco(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_export_whose_backup_copy_fails_leaves_no_empty_backup(
    monkeypatch: pytest.MonkeyPatch, exported: tuple[Project, Path, dict[str, bytes]]
) -> None:
    project, out, before = exported

    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full_copy(src: object, dst: object) -> None:
        Path(str(dst)).write_bytes(b"")  # what a full disk leaves: the file, with nothing in it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copy2", full_copy)
    with pytest.raises(DiskFullError, match="disk full"):
        project.export_coco(out)
    assert _files(out) == before  # no 0-byte .bak, no .tmp, every split as it was


def test_export_write_error_enospc_is_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path)
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match="disk full"):
        project.export_coco(tmp_path / "out")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not (tmp_path / "out").exists()
    project.close()


def _limit_pages(conn: sqlite3.Connection, extra_pages: int = 0) -> None:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


def test_import_into_a_full_disk_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = make_roboflow_dataset(tmp_path)
    real_connect = project_schema.connect

    def small_disk(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.execute("PRAGMA max_page_count = 8")  # SQLite answers SQLITE_FULL past 8 pages
        return conn

    monkeypatch.setattr(project_schema, "connect", small_disk)
    with pytest.raises(DiskFullError, match="disk full"):
        Project.create(tmp_path / "proj", load_dataset(dataset))
    assert not (tmp_path / "proj").exists()


def test_storing_predictions_on_a_full_disk_changes_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    image = project.images("train")[0].id
    dets = [Detection((1, 1, 20, 20), 0.9, box_mask(1, 1, 20, 20), 1, "fuse")]
    project.store_predictions(image, "model-a", "k", dets, category_id=1)
    before = project.counts()
    _limit_pages(project.db.conn)
    big = [
        Detection((1, 1, 20, 20), 0.5 + i / 1e4, box_mask(1, 1, 20, 20), 1, "x" * 5000) for i in range(400)
    ]
    with pytest.raises(DiskFullError, match="disk full: the project database"):
        project.store_predictions(image, "model-b", "k2", big, category_id=1)
    assert project.counts() == before  # rolled back, never "cannot rollback"
    assert len(project.predictions(image)) == 1
    project.db.conn.execute("PRAGMA max_page_count = 1073741823")
    project.store_predictions(image, "model-b", "k2", big[:2], category_id=1)  # the project still works
    project.close()


def test_cli_disk_full_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = make_roboflow_dataset(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 10))  # type: ignore[attr-defined]
    assert main(["import", str(dataset), "--project", str(tmp_path / "proj")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("fusereview import:")] == [
        line for line in err.splitlines() if "disk full" in line
    ]
    assert not (tmp_path / "proj").exists()


# ---------------------------------------------------------------------------------- defect 11


def test_stale_temp_files_of_a_killed_export_are_cleaned(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    out = tmp_path / "export"
    project.export_coco(out)
    dead = out / "train" / "._annotations.coco.json.999999999.abc123.tmp"
    dead.write_bytes(b"x" * 1000)
    live = out / "train" / f"._annotations.coco.json.{os.getpid()}.def456.tmp"
    live.write_bytes(b"y")
    project.export_coco(out)
    assert not dead.exists()
    assert live.exists()  # a process that is still running may be writing it
    old = os.path.getmtime(live) - project_export.STALE_TEMP_SECONDS - 10
    os.utime(live, (old, old))
    project.export_coco(out)
    assert not live.exists()
    project.close()


def test_a_read_only_project_opens_for_viewing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On read-only media SQLite answers 'attempt to write a readonly database' (checked by hand as
    an unprivileged user); the project opens read-only and every change is refused clearly."""
    project = make_project(tmp_path)
    root = project.root
    image = project.images("train")[0].id
    project.close()
    real_connect = project_schema.connect

    def read_only_media(db_path: Path, busy_timeout: float, *, bulk: bool = False, read_only: bool = False):  # type: ignore[no-untyped-def]
        if not read_only:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real_connect(db_path, busy_timeout, bulk=bulk, read_only=True)

    monkeypatch.setattr(project_schema, "connect", read_only_media)
    before = tree_hash(root)
    with Project.open(root) as viewing:
        assert viewing.read_only
        assert len(viewing.images()) == 7 and viewing.annotations(image)
        with pytest.raises(ProjectError, match="read-only media"):
            viewing.add_annotation(image, 1, bbox=[1, 1, 2, 2])
        assert viewing.to_coco_dict("train")["images"]
    assert tree_hash(root) == before


def test_symlinked_split_folder_one_rule_for_validate_and_predict(tmp_path: Path) -> None:
    """A split folder that is a symlink the user placed in the dataset is followed everywhere."""
    root = make_roboflow_dataset(tmp_path / "data", splits={"train": 2})
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(root / "train"), elsewhere)
    os.symlink(elsewhere, root / "train")
    assert validate_dataset(root) == []
    with Project.create(tmp_path / "proj", load_dataset(root)) as project:
        for record in project.images():
            assert project.image_path(record.id).is_file()
        from fusereview.core.images import load_image

        load_image(project.image_path(project.images()[0].id))


def test_export_is_valid_json_for_the_split_it_wrote(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    written = project.export_coco(tmp_path / "out")
    assert sorted(p.parent.name for p in written) == sorted(SPLITS)
    for p in written:
        json.loads(p.read_text())
    project.close()


def test_write_json_atomic_on_a_full_disk_is_disk_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusereview.core.coco import write_json_atomic

    out = tmp_path / "a.json"
    out.write_text('{"images": [], "categories": [], "annotations": []}')
    before = _files(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match=r"disk full: .* MB needed at"):
        write_json_atomic({"images": [], "categories": [], "annotations": [1]}, out)
    monkeypatch.undo()
    assert _files(tmp_path) == before

    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full_copy(src: object, dst: object) -> None:
        Path(str(dst)).write_bytes(b"")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copy2", full_copy)
    with pytest.raises(DiskFullError):
        write_json_atomic({"images": [], "categories": [], "annotations": []}, out)
    assert _files(tmp_path) == before  # no 0-byte backup, no temporary file
