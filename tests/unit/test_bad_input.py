"""The bad-input matrix: each malformed input gets a clear message naming the file and the field,
nothing on disk changes, and ``validate`` reports every problem at once."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coco_samples import load_json, make_roboflow_dataset, save_json, tree_hash
from fuzz_support import paths_of

from fusereview.cli import main
from fusereview.core.coco import CocoSplit, load_dataset, resolve_image_path, validate_dataset
from fusereview.core.errors import DatasetError

TRAIN = "train/_annotations.coco.json"
FIRST_IMAGE = "train/fuse box (0)_jpg.rf.0000.jpg"


def _edit(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        data = load_json(root / TRAIN)
        fn(data)
        save_json(root / TRAIN, data)

    return mutate


def _write(rel: str, content: bytes | str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8")
        else:
            p.write_bytes(content)

    return mutate


def _truncate(rel: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / rel
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])

    return mutate


def _replace_text(old: str, new: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / TRAIN
        text = p.read_text(encoding="utf-8")
        assert old in text
        p.write_text(text.replace(old, new, 1), encoding="utf-8")

    return mutate


def _huge_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def _ann(i: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def fn(d: dict[str, Any]) -> None:
        d["annotations"][i].update(fields)

    return fn


def _traversal(root: Path) -> None:
    # A readable file outside the dataset: it must never be opened through the json.
    (root.parent / "x.jpg").write_bytes((root / FIRST_IMAGE).read_bytes())
    _edit(lambda d: d["images"][0].update(file_name="../../x.jpg"))(root)


def _write_split_category(split: str, name: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        p = root / split / "_annotations.coco.json"
        data = load_json(p)
        data["categories"][1]["name"] = name
        save_json(p, data)

    return mutate


def _both_valid_and_val(root: Path) -> None:
    import shutil

    shutil.copytree(root / "valid", root / "val")


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _nested_list(levels: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(levels - 1):
        out = [out]
    return out


_BIG = 10**400  # parses as a Python int; no float holds it


def _replace_image(kind: str) -> Callable[[Path], None]:
    """The first image becomes a FIFO, a symlink to /dev/zero, or a 2 GiB (sparse) file."""

    def mutate(root: Path) -> None:
        import os

        p = root / FIRST_IMAGE
        head = p.read_bytes()[:4096]
        p.unlink()
        if kind == "fifo":
            os.mkfifo(p)
        elif kind == "dev-zero":
            os.symlink("/dev/zero", p)
        else:
            with open(p, "wb") as fh:
                fh.write(head)
                fh.truncate(2 << 30)  # sparse: takes no disk space

    return mutate


# (id, mutation, file the problem is in, JSON path, words of the message, seen by load_dataset)
CASES: list[tuple[str, Callable[[Path], None], str, str, str, bool]] = [
    ("not-json", _write(TRAIN, "hello, I am not JSON"), TRAIN, "", "not valid JSON", True),
    ("truncated-json", _truncate(TRAIN), TRAIN, "", "truncated", True),
    ("empty-json", _write(TRAIN, ""), TRAIN, "", "file is empty", True),
    ("top-level-list", _write(TRAIN, "[1, 2]"), TRAIN, "", "top level is a JSON list", True),
    ("not-utf8", _write(TRAIN, b'{"images": "\xff\xfe"}'), TRAIN, "", "not valid JSON", True),
    ("missing-images", _edit(lambda d: d.pop("images")), TRAIN, "images", "missing", True),
    ("images-not-list", _edit(lambda d: d.update(images={})), TRAIN, "images", "must be a list", True),
    ("missing-categories", _edit(lambda d: d.pop("categories")), TRAIN, "categories", "missing", True),
    (
        "duplicate-image-id",
        _edit(lambda d: d["images"][1].update(id=d["images"][0]["id"])),
        TRAIN,
        "images[1].id",
        "duplicate image id 0",
        True,
    ),
    (
        "duplicate-annotation-id",
        _edit(lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"])),
        TRAIN,
        "annotations[1].id",
        "duplicate annotation id",
        True,
    ),
    (
        "missing-image-ref",
        _edit(_ann(2, image_id=999)),
        TRAIN,
        "annotations[2].image_id",
        "no image with id 999",
        True,
    ),
    (
        "missing-category-ref",
        _edit(_ann(2, category_id=7)),
        TRAIN,
        "annotations[2].category_id",
        "no category with id 7",
        True,
    ),
    (
        "bbox-negative",
        _edit(_ann(2, bbox=[5, 5, -3, 4])),
        TRAIN,
        "annotations[2].bbox",
        "must not be negative",
        True,
    ),
    (
        "bbox-nan",
        _replace_text('"bbox": [\n    11', '"bbox": [\n    NaN'),
        TRAIN,
        "annotations[2].bbox",
        "not a finite",
        True,
    ),
    (
        "bbox-short",
        _edit(_ann(2, bbox=[1, 2, 3])),
        TRAIN,
        "annotations[2].bbox",
        "[x, y, width, height]",
        True,
    ),
    (
        "bbox-strings",
        _edit(_ann(2, bbox=["1", 2, 3, 4])),
        TRAIN,
        "annotations[2].bbox",
        "must be 4 numbers",
        True,
    ),
    (
        "bbox-far-outside",
        _edit(_ann(2, bbox=[500, 5, 10, 10])),
        TRAIN,
        "annotations[2].bbox",
        "goes outside the 64x48 image",
        True,
    ),
    (
        "polygon-odd-length",
        _edit(_ann(3, segmentation=[[1, 1, 9, 1, 9, 9, 1]])),
        TRAIN,
        "annotations[3].segmentation[0]",
        "odd number of coordinates",
        True,
    ),
    (
        "polygon-non-numeric",
        _edit(_ann(3, segmentation=[[1, 1, 9, "x", 9, 9]])),
        TRAIN,
        "annotations[3].segmentation",
        "must be numbers",
        True,
    ),
    (
        "segmentation-wrong-type",
        _edit(_ann(3, segmentation="polygon")),
        TRAIN,
        "annotations[3].segmentation",
        "list of polygons or an RLE",
        True,
    ),
    (
        "rle-wrong-size",
        _edit(_ann(2, segmentation={"size": [10, 10], "counts": [100]})),
        TRAIN,
        "annotations[2].segmentation",
        "RLE size is 10x10",
        True,
    ),
    (
        "rle-bad-counts",
        _edit(_ann(2, segmentation={"size": [48, 64], "counts": [5, 5]})),
        TRAIN,
        "annotations[2].segmentation",
        "cover 10 pixels",
        True,
    ),
    ("iscrowd-invalid", _edit(_ann(2, iscrowd=2)), TRAIN, "annotations[2].iscrowd", "must be 0 or 1", True),
    ("area-negative", _edit(_ann(2, area=-5)), TRAIN, "annotations[2].area", "non-negative", True),
    (
        "image-width-missing",
        _edit(lambda d: d["images"][1].pop("width")),
        TRAIN,
        "images[1].width",
        "positive integer",
        True,
    ),
    (
        "category-without-name",
        _edit(lambda d: d["categories"][1].pop("name")),
        TRAIN,
        "categories[1].name",
        "non-empty string",
        True,
    ),
    (
        "duplicate-file-name",
        _edit(lambda d: d["images"][1].update(file_name=d["images"][0]["file_name"])),
        TRAIN,
        "images[1].file_name",
        "listed twice",
        True,
    ),
    ("path-traversal", _traversal, TRAIN, "images[0].file_name", "'..'", True),
    (
        "absolute-path",
        _edit(lambda d: d["images"][0].update(file_name="/etc/passwd")),
        TRAIN,
        "images[0].file_name",
        "absolute path",
        True,
    ),
    (
        "category-differs-between-splits",
        _write_split_category("test", "other thing"),
        "test/_annotations.coco.json",
        "categories[1].name",
        "'other thing' here but 'fuse neutrals' in split 'train'",
        True,
    ),
    (
        "nan-in-unknown-field",
        _replace_text('"kept": true', '"kept": NaN'),
        TRAIN,
        "x_custom.kept",
        "not a JSON number",
        True,
    ),
    (
        "id-beyond-64-bit",
        _edit(lambda d: d["images"][0].update(id=2**70)),
        TRAIN,
        "images[0].id",
        "must be an integer",
        True,
    ),
    ("valid-and-val", _both_valid_and_val, "val/_annotations.coco.json", "", "keep only one", True),
    # ---- issue 11: values the parser accepts but nothing downstream can hold
    ("area-zero", _edit(_ann(2, area=0)), TRAIN, "annotations[2].area", "is 0", True),
    (
        "bbox-zero-width",
        _edit(_ann(2, bbox=[5, 5, 0, 4])),
        TRAIN,
        "annotations[2].bbox",
        "zero width or height",
        True,
    ),
    (
        "rle-empty-mask",
        _edit(_ann(2, segmentation={"size": [48, 64], "counts": [48 * 64]}, area=20)),
        TRAIN,
        "annotations[2].segmentation",
        "mask is empty",
        True,
    ),
    (
        "bbox-309-digit-int",
        _edit(_ann(2, bbox=[_BIG, 1, 2, 3])),
        TRAIN,
        "annotations[2].bbox",
        "not a finite",
        True,
    ),
    (
        "polygon-309-digit-int",
        _edit(_ann(3, segmentation=[[_BIG, 1, 9, 1, 9, 9]])),
        TRAIN,
        "annotations[3].segmentation",
        "not a finite number",
        True,
    ),
    (
        "area-309-digit-int",
        _edit(_ann(2, area=_BIG)),
        TRAIN,
        "annotations[2].area",
        "non-negative number",
        True,
    ),
    (
        "width-309-digit-int",
        _edit(lambda d: d["images"][1].update(width=_BIG)),
        TRAIN,
        "images[1].width",
        "positive integer",
        True,
    ),
    (
        "int-beyond-4300-digits",
        _replace_text('"bbox": [\n    11', '"bbox": [\n    ' + "9" * 5000),
        TRAIN,
        "",
        "more than 4300 digits",
        True,
    ),
    (
        "inf-in-info",
        _replace_text('"year": "2024"', '"year": 1e400'),
        TRAIN,
        "info.year",
        "not a JSON number",
        True,
    ),
    (
        "inf-in-category",
        _replace_text('"supercategory": "none"', '"supercategory": "none", "x_scale": -1e400'),
        TRAIN,
        "categories[0].x_scale",
        "not a JSON number",
        True,
    ),
    (
        "inf-top-level",
        _replace_text('"x_custom": {', '"x_big": 1e999, "x_custom": {'),
        TRAIN,
        "x_big",
        "not a JSON number",
        True,
    ),
    (
        "surrogate-in-file-name",
        _replace_text('"file_name": "fuse box (0)', '"file_name": "\\ud800fuse box (0)'),
        TRAIN,
        "images[0].file_name",
        "surrogate",
        True,
    ),
    (
        "surrogate-in-unknown-field",
        _replace_text('"kept": true', '"kept": "a\\udc80b"'),
        TRAIN,
        "x_custom.kept",
        "surrogate",
        True,
    ),
    (
        "nested-too-deep",
        _replace_text('"kept": true', '"kept": ' + _deep(200)),
        TRAIN,
        "x_custom",
        "nested more than 64 levels",
        True,
    ),
    (
        "nested-beyond-the-parser",
        _replace_text('"kept": true', '"kept": ' + _deep(5000)),
        TRAIN,
        "",
        "nested too deeply",
        True,
    ),
    (
        "nested-too-deep-in-annotation",
        _edit(_ann(2, x_deep={"a": {"b": _nested_list(80)}})),
        TRAIN,
        "annotations[2].x_deep",
        "nested",
        True,
    ),
    (
        "image-missing",
        lambda root: (root / FIRST_IMAGE).unlink(),
        TRAIN,
        "images[0].file_name",
        "not found",
        False,
    ),
    (
        "image-corrupt",
        _write(FIRST_IMAGE, b"\x00garbage" * 100),
        TRAIN,
        "images[0].file_name",
        "not a readable image",
        False,
    ),
    ("image-zero-bytes", _write(FIRST_IMAGE, b""), TRAIN, "images[0].file_name", "empty (0 bytes)", False),
    ("image-truncated", _truncate(FIRST_IMAGE), TRAIN, "images[0].file_name", "truncated", False),
    (
        "image-2gb-header",
        _write(FIRST_IMAGE, _huge_png(46341, 46341)),
        TRAIN,
        "images[0].file_name",
        "megapixel",
        False,
    ),
    ("image-fifo", _replace_image("fifo"), TRAIN, "images[0].file_name", "FIFO", False),
    (
        "image-symlink-to-dev-zero",
        _replace_image("dev-zero"),
        TRAIN,
        "images[0].file_name",
        "character device",
        False,
    ),
    (
        "image-2gib-file",
        _replace_image("huge"),
        TRAIN,
        "images[0].file_name",
        "MiB, more than any image",
        False,
    ),
    (
        "image-size-mismatch",
        _edit(lambda d: d["images"][0].update(width=65)),
        TRAIN,
        "images[0].file_name",
        "json says 65x48",
        False,
    ),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_roboflow_dataset(tmp_path_factory.mktemp("pristine"))


def _fresh(pristine: Path, tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / pristine.name
    shutil.copytree(pristine, root)
    return root


def test_matrix_has_at_least_20_cases() -> None:
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.timeout(60)  # a FIFO image once hung validate forever: a hang must fail, not block the suite
@pytest.mark.parametrize(
    ("case", "mutate", "file", "where", "words", "json_level"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input(
    pristine: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    mutate: Callable[[Path], None],
    file: str,
    where: str,
    words: str,
    json_level: bool,
) -> None:
    root = _fresh(pristine, tmp_path)
    mutate(root)
    before = tree_hash(tmp_path)

    problems = validate_dataset(root)
    expected_file = str(root / file)
    hits = [p for p in problems if p.file == expected_file and p.where == where and words in p.message]
    assert hits, f"{case}: no problem {expected_file}: {where}: ...{words}... in {[str(p) for p in problems]}"
    assert str(hits[0]).startswith(f"{expected_file}: {where + ': ' if where else ''}")

    if json_level:
        with pytest.raises(DatasetError) as info:
            load_dataset(root)
        assert any(p.where == where and words in p.message for p in info.value.problems)
        assert expected_file in str(info.value)
    else:
        load_dataset(root)  # the json is fine; only the image files are broken

    assert main(["validate", str(root)]) == 1
    out, err = capsys.readouterr()
    assert str(hits[0]) in out.splitlines()
    assert "Traceback" not in out + err
    assert tree_hash(tmp_path) == before, f"{case}: something on disk changed"


def test_traversal_never_reads_outside(pristine: Path, tmp_path: Path) -> None:
    root = _fresh(pristine, tmp_path)
    split = CocoSplit("train", root / TRAIN, root / "train", {}, root=root)
    for name in (
        "../../x.jpg",
        "../valid/a.jpg",
        "..\\..\\x.jpg",
        "/etc/passwd",
        "C:\\x.jpg",
        "a/../../b.jpg",
        "",
    ):
        with pytest.raises(DatasetError):
            resolve_image_path(split, name)
    assert resolve_image_path(split, "fuse box (0)_jpg.rf.0000.jpg").is_file()
    assert resolve_image_path(split, "sub dir/ä (1).jpg") == root / "train" / "sub dir" / "ä (1).jpg"


def test_validate_reports_every_problem_at_once(pristine: Path, tmp_path: Path) -> None:
    root = _fresh(pristine, tmp_path)
    chosen = {
        "duplicate-image-id",
        "bbox-negative",
        "polygon-odd-length",
        "missing-category-ref",
        "image-zero-bytes",
    }
    expected = []
    for case, mutate, file, where, words, _ in CASES:
        if case in chosen:
            mutate(root)
            expected.append((str(root / file), where, words))
    # and a broken second split
    _write("valid/_annotations.coco.json", "{")(root)
    expected.append((str(root / "valid/_annotations.coco.json"), "", "not valid JSON"))
    problems = validate_dataset(root)
    for file, where, words in expected:
        assert any(p.file == file and p.where == where and words in p.message for p in problems), (
            file,
            where,
            words,
        )
    with pytest.raises(DatasetError, match=r"and \d+ more problems"):
        load_dataset(root)


def test_random_corruption_never_crashes(tmp_path: Path) -> None:
    """Any value replaced by any JSON value: a DatasetError (or a clean load), never a traceback."""
    import random

    root = make_roboflow_dataset(tmp_path, splits={"train": 2})
    original = load_json(root / TRAIN)
    paths = paths_of(original)
    junk: list[Any] = [
        None,
        "x",
        -1,
        0,
        1.5,
        float("nan"),
        True,
        [],
        {},
        [1, 2],
        {"size": [1, 1], "counts": 7},
        10**30,
    ]
    rng = random.Random(0)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        data = load_json(root / TRAIN)
        for path in rng.sample(paths, 2):
            node = data
            try:
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = rng.choice(junk)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed this path
        save_json(root / TRAIN, data)
        try:
            load_dataset(root)
            outcomes["loaded"] += 1
        except DatasetError as exc:
            assert exc.problems and all(p.file and p.message for p in exc.problems)
            outcomes["refused"] += 1
        validate_dataset(root)  # must not raise either
    assert outcomes["refused"] > 50


def test_problem_list_is_capped_per_file_and_counts_stay_true(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2520 problems: 1000 listed, one line for the other 1520, and every count says 2520."""
    root = make_roboflow_dataset(tmp_path, splits={"train": 1})
    data = load_json(root / TRAIN)
    template = data["annotations"][0]
    data["annotations"] = [dict(template, id=k, image_id=12345) for k in range(2520)]
    save_json(root / TRAIN, data)
    problems = validate_dataset(root)
    assert len(problems) == 1001
    assert problems[-1].message == "... and 1520 more problems not listed"
    with pytest.raises(DatasetError, match=r"\(and 2519 more problems\)"):
        load_dataset(root)
    assert main(["validate", str(root)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1001
    assert "2520 problems found" in err


def test_image_file_problems_are_capped_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_roboflow_dataset(tmp_path, splits={"train": 1})
    data = load_json(root / TRAIN)
    data["images"] = [dict(data["images"][0], id=k, file_name=f"missing-{k}.jpg") for k in range(1500)]
    data["annotations"] = []
    save_json(root / TRAIN, data)
    problems = validate_dataset(root)
    assert len(problems) == 1001 and problems[-1].omitted == 500
    assert main(["validate", str(root)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1001 and "1500 problems found" in err


def test_a_huge_category_name_makes_short_lines(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fresh(pristine, tmp_path)
    _write_split_category("test", "x" * 1_000_000)(root)
    assert main(["validate", str(root)]) == 1
    out, err = capsys.readouterr()
    assert "categories[1].name" in out
    assert max(len(line) for line in (out + err).splitlines()) < 2500


def test_a_box_only_label_whose_area_claims_a_mask_is_a_quirk_not_a_refusal(
    pristine: Path, tmp_path: Path
) -> None:
    """Masks stripped from a file (boxes and the masks' areas kept): still a box dataset, said so."""
    ds = _fresh(pristine, tmp_path)
    _edit(_ann(3, segmentation=[], area=7.0))(ds)
    loaded = load_dataset(ds)
    assert any("claims a mask" in q.message and q.where == "annotations[3].area" for q in loaded.quirks)
