"""`fusereview info DATASET`: splits, images, classes, annotation counts and the quirks handled."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "dataset", help="a Roboflow COCO export folder, a folder with one json, or a COCO json file"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (for scripts)")


def summarize(dataset: Any) -> dict[str, Any]:
    """A plain-data summary of a loaded :class:`fusereview.core.coco.Dataset`.

    Returns
    -------
    dict
        ``root``, ``layout``, ``classes`` (real ones), ``hidden_categories`` (placeholders),
        ``splits`` (per split: images, annotations, per-class counts, masks, bbox-only, crowd,
        unlabelled images) and ``quirks`` (one ``file: where: message`` string each).
    """
    hidden = dataset.placeholder_category_ids()
    classes = dataset.real_categories()
    names = {c["id"]: c["name"] for c in dataset.all_categories()}
    splits: dict[str, Any] = {}
    for name, split in dataset.splits.items():
        anns = split.annotations
        per_class = Counter(names.get(a["category_id"], str(a["category_id"])) for a in anns)
        labelled = {a["image_id"] for a in anns}
        masks = sum(1 for a in anns if a.get("segmentation"))
        splits[name] = {
            "json": str(split.json_path),
            "images": len(split.images),
            "annotations": len(anns),
            "per_class": dict(sorted(per_class.items())),
            "masks": masks,
            "bbox_only": len(anns) - masks,
            "crowd": sum(1 for a in anns if a.get("iscrowd") == 1),
            "unlabelled_images": sum(1 for im in split.images if im["id"] not in labelled),
        }
    return {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "classes": [{"id": c["id"], "name": c["name"]} for c in classes],
        "hidden_categories": [{"id": i, "name": names[i]} for i in sorted(hidden)],
        "splits": splits,
        "quirks": [str(q) for q in dataset.quirks],
    }


def _print_text(s: dict[str, Any]) -> None:
    out = sys.stdout
    print(f"Dataset: {s['root']} ({s['layout']} layout)", file=out)
    classes = ", ".join(f"{c['name']} [id {c['id']}]" for c in s["classes"]) or "(none)"
    print(f"Classes ({len(s['classes'])}): {classes}", file=out)
    if s["hidden_categories"]:
        hidden = ", ".join(f"{c['name']} [id {c['id']}]" for c in s["hidden_categories"])
        print(f"Hidden placeholder category: {hidden} (unused; kept on export)", file=out)
    cols = ("images", "annotations", "masks", "bbox_only", "crowd", "unlabelled_images")
    heads = ("images", "annotations", "masks", "bbox-only", "crowd", "no labels")
    width = max([5, *(len(n) for n in s["splits"])])
    print("", file=out)
    print(f"{'split':<{width}}  " + "  ".join(f"{h:>11}" for h in heads), file=out)
    totals = dict.fromkeys(cols, 0)
    for name, sp in s["splits"].items():
        print(f"{name:<{width}}  " + "  ".join(f"{sp[c]:>11}" for c in cols), file=out)
        for c in cols:
            totals[c] += sp[c]
    if len(s["splits"]) > 1:
        print(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>11}" for c in cols), file=out)
    print("", file=out)
    print("Annotations per class:", file=out)
    class_names = sorted({n for sp in s["splits"].values() for n in sp["per_class"]})
    for cname in class_names:
        parts = ", ".join(f"{name} {sp['per_class'].get(cname, 0)}" for name, sp in s["splits"].items())
        print(f"  {cname}: {parts}", file=out)
    print("", file=out)
    if s["quirks"]:
        print(f"Quirks found and handled ({len(s['quirks'])}):", file=out)
        prefix = s["root"].rstrip("/\\") + os.sep
        for q in s["quirks"]:
            # Paths relative to the dataset: the full path is already on the first line.
            print(f"  {q[len(prefix) :] if q.startswith(prefix) else q}", file=out)
    else:
        print("Quirks found and handled: none", file=out)


def run(args: argparse.Namespace) -> int:
    """Load the dataset and print its summary; a dataset with problems is an error."""
    from fusereview.core.coco import load_dataset
    from fusereview.core.errors import DatasetError, FusereviewError

    try:
        dataset = load_dataset(args.dataset)
    except DatasetError as exc:
        raise FusereviewError(
            f"{exc} -- run 'fusereview validate {args.dataset}' for every problem"
        ) from None
    summary = summarize(dataset)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        _print_text(summary)
    return 0
