"""`fusereview info` and `fusereview validate` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from coco_samples import CLASS_NAME, load_json, make_roboflow_dataset, save_json, tree_hash

from fusereview.cli import main


def test_info_describes_splits_classes_and_quirks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_roboflow_dataset(tmp_path)
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "roboflow layout" in out
    assert f"Classes (1): {CLASS_NAME} [id 1]" in out
    assert "Hidden placeholder category: fuse-neutrals [id 0]" in out
    lines = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()
        if line[:5] in ("train", "valid", "test ", "total")
    }
    assert (
        lines["train"][:2] == ["3", "6"]
        and lines["valid"][:2] == ["2", "4"]
        and lines["test"][:2] == ["1", "2"]
    )
    assert lines["total"][:2] == ["6", "12"]
    assert f"{CLASS_NAME}: train 6, valid 4, test 2" in out
    assert "Quirks found and handled" in out and "train/_annotations.coco.json: annotations[0].area" in out


def test_info_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_roboflow_dataset(tmp_path, quirks=False)
    assert main(["info", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classes"] == [{"id": 1, "name": CLASS_NAME}]
    assert summary["splits"]["train"]["annotations"] == 6
    assert summary["splits"]["train"]["masks"] == 6 and summary["quirks"] == []


def test_info_on_a_broken_dataset_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_roboflow_dataset(tmp_path)
    (root / "test/_annotations.coco.json").write_text("{")
    assert main(["info", str(root)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "test/_annotations.coco.json: not valid JSON" in err and "fusereview validate" in err


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_roboflow_dataset(tmp_path)
    assert main(["validate", str(root), "--quirks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {root}: 3 split(s), 6 images, 12 annotations")
    assert "quirk: " in out
    assert main(["validate", str(root), "--deep"]) == 0


def test_validate_lists_every_problem_in_a_subprocess(tmp_path: Path) -> None:
    root = make_roboflow_dataset(tmp_path)
    js = root / "train/_annotations.coco.json"
    data = load_json(js)
    data["annotations"][0]["bbox"] = [1, 2, -3, 4]
    data["annotations"][1]["category_id"] = 42
    data["images"][2]["file_name"] = "../../../etc/passwd"
    save_json(js, data)
    (
        root / "valid" / data["images"][0]["file_name"].replace("(0)", "(3)").replace("0000", "0003")
    ).write_bytes(b"")
    before = tree_hash(root)
    proc = subprocess.run(
        [sys.executable, "-m", "fusereview", "validate", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert f"{js}: annotations[0].bbox: width and height must not be negative: [1, 2, -3, 4]" in lines
    assert f"{js}: annotations[1].category_id: no category with id 42" in lines
    assert any(line.startswith(f"{js}: images[2].file_name: file name goes up") for line in lines)
    assert any(
        "valid/_annotations.coco.json: images[0].file_name:" in line and "empty" in line for line in lines
    )
    assert f"{len(lines)} problems found" in proc.stderr
    assert tree_hash(root) == before


def test_validate_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "no such file or folder" in capsys.readouterr().out
