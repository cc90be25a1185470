"""Two processes writing one project: no corruption, no lost writes, a clear error when blocked too long."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_project import make_project

from fusereview.core.errors import ProjectBusyError
from fusereview.core.project import Project
from fusereview.core.records import Detection, ReviewState

REPO = Path(__file__).resolve().parents[2]
N = 30


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


ANNOTATE = """
    import sys
    from fusereview.core.project import Project
    p = Project.open(sys.argv[1], busy_timeout=30)
    images = p.images()
    for i in range(int(sys.argv[2])):
        p.add_annotation(images[i % len(images)].id, 1, bbox=[i, i, 3, 3], extra={"writer": "gui"})
    print("ok")
"""

PREDICT_AND_DECIDE = """
    import sys
    from fusereview.core.project import Project
    from fusereview.core.records import Detection, ReviewState
    p = Project.open(sys.argv[1], busy_timeout=30)
    images = p.images()
    for i in range(int(sys.argv[2])):
        image = images[i % len(images)]
        # a box of its own per prediction: a second prediction of the same box would match the
        # first one's annotation and be recorded as agreement, not as a new annotation
        det = Detection((float(i), 40.0, i + 5.0, 45.0), 0.5, None, 1)
        (pred,) = p.store_predictions(image.id, "cli", f"k{i}", [det])
        p.decide(pred.id, ReviewState.ACCEPTED, by="cli")
    print("ok")
"""


def test_two_writers_lose_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    root, before = project.root, len(project.annotations())
    assert not project.poll_external_changes()
    procs = [_spawn(ANNOTATE, str(root), str(N)), _spawn(PREDICT_AND_DECIDE, str(root), str(N))]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    # the GUI's way to notice another process's writes (events only reach this process)
    assert project.poll_external_changes()
    project.set_prompt(1, "own writes do not count")
    assert not project.poll_external_changes()
    project.close()
    with Project.open(root) as again:
        assert not again.poll_external_changes()
        anns = again.annotations()
        assert len(anns) == before + 2 * N
        assert len(again.predictions(states=[ReviewState.ACCEPTED])) == N
        for split in again.splits():
            ids = [a["id"] for a in again.to_coco_dict(split)["annotations"]]
            assert len(ids) == len(set(ids)), f"COCO ids handed out twice in {split}"
    with sqlite3.connect(root / "project.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


HOLD_LOCK = """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE categories SET prompt = 'held' WHERE id = 1")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
"""


def test_blocked_writer_gets_project_busy_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    root = project.root
    project.close()
    holder = _spawn(HOLD_LOCK, str(root / "project.db"), "1.5")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        busy = Project.open(root, busy_timeout=0.3)
        assert busy.categories()[0].prompt == "fuse neutrals"  # WAL: reading never waits
        start = time.monotonic()
        with pytest.raises(ProjectBusyError) as info:
            busy.set_prompt(1, "new prompt")
        assert 0.25 < time.monotonic() - start < 2.5
        message = str(info.value)
        assert str(root) in message and "busy" in message and "0.3 s" in message
    finally:
        holder.wait(timeout=30)
    # nothing was changed by the refused write; once free, writing works
    assert busy.categories()[0].prompt == "fuse neutrals"
    busy.set_prompt(1, "new prompt")
    assert busy.categories()[0].prompt == "new prompt"
    busy.close()


KILLED_AFTER_DECIDING = """
    import os, signal, sys
    from fusereview.core.project import Project
    from fusereview.core.records import Detection, ReviewState
    p = Project.open(sys.argv[1])
    p.decide(int(sys.argv[2]), ReviewState.REJECTED, by="killed")
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no cleanup: only the commit protects the decision
"""


def test_decision_survives_sigkill(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    image = project.images()[0]
    (pred,) = project.store_predictions(image.id, "m", "k", [Detection((0, 0, 5, 5), 0.5, None, 1)])
    root = project.root
    project.close()
    proc = _spawn(KILLED_AFTER_DECIDING, str(root), str(pred.id))
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Project.open(root) as again:
        after = again.prediction(pred.id)
        assert after.state is ReviewState.REJECTED and after.decided_by == "killed"
