"""`fusereview label-issues`: the table, every issue to CSV or JSON (loaded as a spreadsheet would), bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from label_issue_samples import MODEL, planted_project

from fusereview.cli import main
from fusereview.commands.label_issues import FIELDS
from fusereview.core.geometry import box_iou
from fusereview.core.label_issues import find_label_issues
from fusereview.core.project import Project


@pytest.fixture
def planted(tmp_path: Path):
    project, where = planted_project(tmp_path)
    root = project.root
    coco_ids = dict(project.db.read("SELECT id, coco_id FROM annotations"))
    n_issues = len(find_label_issues(project).issues)
    project.close()
    return root, where, coco_ids, n_issues


def _read_table(path: Path) -> list[dict]:
    """The file as rows of dicts, through pandas when it is installed (as a user would), else csv/json."""
    try:
        import pandas as pd
    except ImportError:  # pandas is not a dependency: the standard library reads it the same way
        if path.suffix == ".csv":
            with path.open(newline="") as fh:
                return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(fh)]
        return json.loads(path.read_text())
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_json(path)
    assert list(frame.columns) == list(FIELDS)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_every_issue_is_written_and_loads_as_a_table(planted, tmp_path: Path, capsys, suffix: str) -> None:
    root, where, coco_ids, n_issues = planted
    out = tmp_path / f"issues{suffix}"
    assert main(["label-issues", str(root), "--out", str(out), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"{n_issues} label issues" in printed and f"model {MODEL}" in printed
    table = printed.splitlines()
    assert "kind" in table[1] and len([ln for ln in table if ln[:4].strip().isdigit()]) == 3
    assert table[-1] == f"... and {n_issues - 3} more in {out}"
    rows = _read_table(out)
    assert len(rows) == n_issues
    assert [int(r["rank"]) for r in rows] == list(range(1, n_issues + 1))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    top4 = {r["kind"]: r for r in rows[:4]}
    assert set(top4) == {"missing", "spurious", "misplaced", "wrong_class"}
    # the annotation id is the one the user's dataset has (its COCO id)
    assert int(top4["spurious"]["annotation_id"]) == coco_ids[where.spurious]
    assert top4["spurious"]["prediction_id"] is None and top4["spurious"]["prediction_x0"] is None
    assert int(top4["misplaced"]["annotation_id"]) == coco_ids[where.misplaced]
    assert top4["wrong_class"]["category"] == "fuse holder"
    assert top4["wrong_class"]["prediction_category"] == "fuse neutrals"
    assert top4["missing"]["annotation_id"] is None
    box = [float(top4["missing"][f"prediction_{k}"]) for k in ("x0", "y0", "x1", "y1")]
    assert box_iou(np.array([box]), np.array([where.missing_box]))[0, 0] > 0.8
    assert top4["missing"]["image"].endswith(".jpg") and top4["missing"]["split"] == "train"


def test_one_kind_only(planted, tmp_path: Path, capsys) -> None:
    from fusereview.core.label_issues import KINDS

    root, where, coco_ids, _ = planted
    for kind in KINDS:
        out = tmp_path / f"{kind}.csv"
        assert main(["label-issues", str(root), "--kind", kind, "--out", str(out)]) == 0
        assert "only" in capsys.readouterr().out
        rows = _read_table(out)
        assert rows and {r["kind"] for r in rows} == {kind}
    wrong = _read_table(tmp_path / "wrong_class.csv")
    assert int(wrong[0]["annotation_id"]) == coco_ids[where.wrong_class]
    with pytest.raises(SystemExit):
        main(["label-issues", str(root), "--kind", "typo"])
    assert "invalid choice" in capsys.readouterr().err


def test_check_boxes_asks_the_model_about_unsupported_labels(planted, tmp_path: Path, capsys) -> None:
    from fusereview.demo.project import demo_model_dir

    root, where, coco_ids, _ = planted
    out = tmp_path / "checked.csv"
    argv = ["label-issues", str(root), "--model", str(demo_model_dir()), "--device", "cpu"]
    assert main([*argv, "--kind", "spurious", "--check-boxes", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "asked the model about" in err and "label boxes no detection supports" in err
    rows = _read_table(out)
    spurious = next(
        r
        for r in rows
        if r["annotation_id"] is not None and int(r["annotation_id"]) == coco_ids[where.spurious]
    )
    assert int(spurious["rank"]) == 1  # a box on nothing stays first when the model is asked about it


def test_bad_options_are_one_line_and_change_nothing(planted, tmp_path: Path, capsys) -> None:
    root, *_ = planted
    before = (root / "project.db").read_bytes()
    for argv, field in (
        (["--out", str(tmp_path / "issues.xlsx")], "--out"),
        (["--min-score", "2"], "--min-score"),
        (["--split", "nope"], "--split"),
        (["--check-boxes"], "--check-boxes"),
        (["--fingerprint", "nope"], "nope"),
        (["--model", "tiny", "--fingerprint", "x"], "--model"),
    ):
        assert main(["label-issues", str(root), *argv]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and field in err[0], err
    assert not list(tmp_path.glob("issues*"))
    assert (root / "project.db").read_bytes() == before


def test_model_predicts_into_the_project_first(planted, capsys) -> None:
    """--model: the project is predicted (cached path, low threshold) and that model's issues listed."""
    root, *_ = planted
    assert main(["label-issues", str(root), "--model", "tiny", "--device", "cpu", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    with Project.open(root) as project:
        tiny = [m for (m,) in project.db.read("SELECT DISTINCT model FROM predictions") if m != MODEL]
        assert len(tiny) == 1 and tiny[0].startswith("tiny:")
        assert f"model {tiny[0]}" in printed
        keys = {
            k for (k,) in project.db.read("SELECT DISTINCT cache_key FROM predictions WHERE model = ?", tiny)
        }
    assert keys, "the tiny model stored nothing"
