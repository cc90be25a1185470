"""Image names as the photographer named them (Roboflow's renamed files shown short)."""

from __future__ import annotations

from fusereview.core.names import display_name, display_names


def test_roboflow_names_are_shown_as_taken() -> None:
    assert display_name("IMG_0001_jpg.rf.3d8e52f74a9488da06e7f1a56ee1b076.jpg") == "IMG_0001.jpg"
    assert display_name("fuse box (2)_jpeg.rf.2ae0a038b3aa11aa22aa33aa44aa55aa.jpg") == "fuse box (2).jpeg"
    assert display_name("train/IMG_5_png.rf.abcdef0123456789abcdef0123456789.png") == "train/IMG_5.png"
    for plain in ("plain.png", "a.rf.b.jpg", "IMG_0001.jpg", "x_jpg.rf.nothex!.jpg"):
        assert display_name(plain) == plain


def test_augmented_copies_of_one_photo_stay_apart() -> None:
    names = [
        "IMG_1_jpg.rf.aaaa0000000000000000000000000000.jpg",
        "IMG_1_jpg.rf.bbbb0000000000000000000000000000.jpg",
        "IMG_2_jpg.rf.cccc0000000000000000000000000000.jpg",
    ]
    shown = display_names(names)
    assert shown[names[0]] == "IMG_1.jpg (aaaa)" and shown[names[1]] == "IMG_1.jpg (bbbb)"
    assert shown[names[2]] == "IMG_2.jpg"
    assert len(set(shown.values())) == 3
