"""Files and folders fusereview writes get the user's umask (they were 0600 / 0700 whatever it was).

Each umask runs in its own interpreter: the umask is per process, and changing it here would
change it for every other test.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WRITER = textwrap.dedent(
    """
    import json, os, sys, torch
    from pathlib import Path

    os.umask(int(sys.argv[2], 8))
    out = Path(sys.argv[1])
    from fusereview.core.files import write_json_atomic, write_text_atomic
    from fusereview.core.coco import load_dataset
    from fusereview.core.project import Project
    from fusereview.core.synthetic import generate_dataset
    from fusereview.evaluation.plots import write_png
    from fusereview.training.modelio import load_model, save_export

    paths = {}
    paths["json"] = write_json_atomic([{"image_id": 1}], out / "results.json")
    from fusereview.core.coco import write_json_atomic as write_coco_json

    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    paths["coco_json"] = write_coco_json(coco, out / "coco.json")
    paths["text"] = write_text_atomic("# report", out / "report.md")
    data = generate_dataset(out / "data", images=3, size=64, seed=0)
    paths["dataset_folder"] = data
    project = Project.create(out / "proj", load_dataset(data))
    paths["export_json"] = project.export_coco(out / "export.json", split="train")[0]
    paths["export_folder"] = project.export_coco(out / "exported")[0].parent
    project.close()
    import numpy as np
    paths["png"] = write_png(np.zeros((4, 4, 3), dtype=np.uint8), out / "plots" / "p.png")
    ckpt = save_export(
        load_model("tiny", image_size=112), out / "run" / "checkpoints" / "last",
        write_more=lambda d: torch.save({"step": 1}, d / "trainer_state.pt"),
    )
    paths["checkpoint_folder"] = ckpt
    paths["checkpoint_weights"] = ckpt / "model.safetensors"
    paths["trainer_state"] = ckpt / "trainer_state.pt"
    print(json.dumps({k: oct(os.stat(p).st_mode & 0o777) for k, p in paths.items()}))
    """
)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_written_files_and_folders_follow_the_umask(tmp_path: Path, umask: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(tmp_path), oct(umask)[2:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    modes = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, mode in modes.items():
        want = (0o777 if "folder" in name else 0o666) & ~umask
        assert int(mode, 8) == want, f"{name}: {mode}, expected {oct(want)} under umask {oct(umask)}"


def test_temporary_names_are_exclusive_and_umask_shaped(tmp_path: Path) -> None:
    from fusereview.core.files import make_temp_dir, make_temp_file

    old = os.umask(0o027)
    try:
        fd, path = make_temp_file(tmp_path, prefix=".x.")
        os.close(fd)
        folder = make_temp_dir(tmp_path, prefix=".d.")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert path.name.startswith(".x.") and path.name.endswith(".tmp")
    fd2, path2 = make_temp_file(tmp_path, prefix=".x.")
    os.close(fd2)
    assert path2 != path
