"""Finding a dataset's json files (Roboflow folders or one json) and parsing them.

Part of the COCO reader (:mod:`fusereview.core.coco` re-exports the public names).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from fusereview.core.coco_model import ROBOFLOW_JSON
from fusereview.core.coco_paths import unsafe_file_name
from fusereview.core.errors import DatasetError, Problem

# Split folder -> split name. ``val/`` (other exporters) is read as "valid" (Roboflow's name).
_SPLIT_FOLDERS: tuple[tuple[str, str], ...] = (
    ("train", "train"),
    ("valid", "valid"),
    ("val", "valid"),
    ("test", "test"),
)

# Set by read_json on a file holding NaN or Infinity; popped again by coco_checks.check_coco.
NON_FINITE_KEY = "\x00fusereview-non-finite"


# Characters no folder name may hold on some platform (the split name becomes an export folder).
_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f/\\:*?"<>|]')


def safe_split_name(raw: str) -> str:
    """``raw`` as a name that is one harmless folder: never ``..``, ``.``, empty, or with separators.

    A file named ``...json`` would otherwise be split ``..``, and ``export --out DIR`` would write
    ``DIR/../_annotations.coco.json``.
    """
    # undecodable bytes of a file name arrive as lone surrogates: no database or file system takes them
    name = raw.encode("utf-8", "replace").decode("utf-8")
    name = _UNSAFE_NAME_CHARS.sub("_", name).strip().strip(".").strip()
    return name or "dataset"


def _split_name_for_file(json_path: Path, quirks: list[Problem]) -> str:
    if json_path.name == ROBOFLOW_JSON:
        folder = json_path.parent.name
        return dict(_SPLIT_FOLDERS).get(folder, folder or "dataset")
    raw = json_path.name[: -len(".json")] if json_path.name.lower().endswith(".json") else json_path.stem
    name = safe_split_name(raw)
    if name != raw:
        quirks.append(
            Problem(
                str(json_path),
                "",
                f"split name {raw!r} (from the file name) is not a safe folder name; using {name!r}",
            )
        )
    return name


def discover(path: Path) -> tuple[Path, str, list[tuple[str, Path]], list[Problem]]:
    """Find the json files of a dataset: (root, layout, [(split name, json path)], quirks)."""
    if not path.exists():
        raise DatasetError([Problem(str(path), "", "no such file or folder")])
    quirks: list[Problem] = []
    if path.is_file():
        return path.parent, "single", [(_split_name_for_file(path, quirks), path)], quirks
    found: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    for folder, name in _SPLIT_FOLDERS:
        sub = path / folder
        if not sub.is_dir():
            continue
        j = sub / ROBOFLOW_JSON
        if not j.is_file():
            quirks.append(Problem(str(sub), "", f"split folder has no {ROBOFLOW_JSON}; skipped"))
            continue
        if any(n == name for n, _ in found):
            problems.append(
                Problem(str(j), "", f"both valid/ and val/ hold a '{name}' split; keep only one of them")
            )
            continue
        found.append((name, j))
    if problems:
        raise DatasetError(problems)
    if found:
        return path, "roboflow", found, quirks
    candidates = [path / ROBOFLOW_JSON] if (path / ROBOFLOW_JSON).is_file() else sorted(path.glob("*.json"))
    if len(candidates) == 1:
        return path, "single", [(_split_name_for_file(candidates[0], quirks), candidates[0])], quirks
    if not candidates:
        raise DatasetError(
            [
                Problem(
                    str(path),
                    "",
                    f"no COCO annotations found (expected train/ valid/ test/ folders with {ROBOFLOW_JSON}, "
                    "or one .json file)",
                )
            ]
        )
    names = ", ".join(c.name for c in candidates[:5])
    raise DatasetError([Problem(str(path), "", f"several json files ({names}); name the one to open")])


def pick_image_dir(json_path: Path, data: dict[str, Any]) -> Path:
    """The folder beside the json (Roboflow), or an ``images/`` folder next to it."""
    here = json_path.parent
    alt = here / "images"
    if not alt.is_dir():
        return here
    names = [
        im.get("file_name")
        for im in itertools.islice(data.get("images") or [], 5)
        if isinstance(im, dict)
        and isinstance(im.get("file_name"), str)
        and not unsafe_file_name(im["file_name"])
    ]
    if names and not any((here / n).is_file() for n in names) and any((alt / n).is_file() for n in names):
        return alt
    return here


# ---------------------------------------------------------------------------------------- reading


def _huge_integer_at(raw: bytes) -> str:
    match = re.search(rb"[0-9]{4301,}", raw)
    if match is None:
        return "a number with more than 4300 digits"
    line = raw.count(b"\n", 0, match.start()) + 1
    column = match.start() - (raw.rfind(b"\n", 0, match.start()) + 1) + 1
    return (
        f"a number with more than 4300 digits ({match.end() - match.start()}) at line {line}, column {column}"
    )


def read_json(json_path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    label = str(json_path)
    try:
        raw = json_path.read_bytes()
    except OSError as exc:
        return None, [Problem(label, "", f"cannot read file: {exc.strerror or exc}")]
    if not raw.strip():
        return None, [Problem(label, "", "file is empty")]
    try:
        constants: list[str] = []

        def parse_constant(name: str) -> float:
            # NaN / Infinity are not JSON (Python's json accepts them): remember, report by path.
            constants.append(name)
            return float(name)

        data = json.loads(raw, parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(raw.rstrip()) - 1 else ""
        return None, [
            Problem(label, "", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}{hint}")
        ]
    except UnicodeDecodeError:
        return None, [Problem(label, "", "not valid JSON: the file is not UTF-8 text")]
    except RecursionError:
        return None, [Problem(label, "", "not valid JSON: nested too deeply")]
    except ValueError:
        # Python refuses to convert integers of more than 4300 digits (a denial-of-service guard).
        return None, [Problem(label, "", f"not valid JSON for any COCO reader: {_huge_integer_at(raw)}")]
    if isinstance(data, dict) and constants:
        data[NON_FINITE_KEY] = True  # check_coco reports where they are, then removes the mark
    if not isinstance(data, dict):
        return None, [
            Problem(
                label,
                "",
                f"top level is a JSON {type(data).__name__}, expected an object with images, annotations, categories",
            )
        ]
    return data, []
