"""Image loading: every pixel format to RGB uint8, EXIF only when the dataset says so, no huge allocations."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from coco_samples import encode_image, jpeg_with_orientation, write_image

from fusereview.core import images


def _bgr(h: int = 12, w: int = 20) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 2] = 200  # red in BGR
    img[0, 0] = (0, 255, 0)  # one green pixel marks the top-left corner
    return img


def test_png_loads_as_rgb_from_a_unicode_path(tmp_path: Path) -> None:
    p = write_image(tmp_path / "sicherung ü (1) 写真.png", _bgr())
    img = images.load_image(p)
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8
    assert tuple(img[5, 5]) == (200, 0, 0)  # RGB now
    assert tuple(img[0, 0]) == (0, 255, 0)
    assert images.read_image_size(p) == (20, 12)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff", ".gif"])
def test_header_size_of_each_format(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"a{ext}"
    p.write_bytes(encode_image(_bgr(13, 21), ext))
    assert images.read_image_size(p) == (21, 13)
    assert images.load_image(p).shape == (13, 21, 3)


def test_grayscale_rgba_and_16_bit(tmp_path: Path) -> None:
    gray = write_image(tmp_path / "g.png", np.full((6, 7), 77, np.uint8))
    out = images.load_image(gray)
    assert out.shape == (6, 7, 3) and (out == 77).all()

    bgra = np.zeros((6, 7, 4), np.uint8)
    bgra[..., 0] = 255  # blue
    bgra[..., 3] = 0  # fully transparent: alpha is dropped, colours kept as stored
    out = images.load_image(write_image(tmp_path / "a.png", bgra))
    assert out.shape == (6, 7, 3) and tuple(out[0, 0]) == (0, 0, 255)

    deep = np.full((6, 7, 3), 65535, np.uint16)
    deep[0, 0] = (0, 0, 257 * 100)
    out = images.load_image(write_image(tmp_path / "d.png", deep))
    assert out.dtype == np.uint8 and tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (100, 0, 0)


def test_exif_orientation_applied_only_when_the_dataset_size_is_rotated(tmp_path: Path) -> None:
    stored = np.zeros((10, 30, 3), np.uint8)  # 30 wide, 10 high
    stored[:, :5] = 255  # white band on the left of the stored pixels
    p = tmp_path / "rot.jpg"
    p.write_bytes(jpeg_with_orientation(encode_image(stored, ".jpg"), 6))  # 6: rotate 90 clockwise
    header = images.read_image_header(p)
    assert (header.width, header.height, header.orientation) == (30, 10, 6)
    assert header.display_size == (10, 30)

    as_stored = images.load_image(p, expected_size=(30, 10))
    assert as_stored.shape == (10, 30, 3)
    assert as_stored[:, :5].mean() > 200
    no_hint = images.load_image(p)
    assert no_hint.shape == (10, 30, 3)

    rotated = images.load_image(p, expected_size=(10, 30))
    assert rotated.shape == (30, 10, 3)
    assert rotated[:5].mean() > 200 and rotated[-10:].mean() < 50  # the left band is now on top
    with pytest.raises(images.ImageDecodeError, match="dataset says 11x30"):
        images.load_image(p, expected_size=(11, 30))


def test_apply_orientation_matches_opencv_for_every_tag(tmp_path: Path) -> None:
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
    base = encode_image(img, ".png")
    for tag in range(1, 9):
        # OpenCV's own EXIF handling (IMREAD_COLOR on a JPEG) is the reference
        jpg = jpeg_with_orientation(encode_image(np.kron(img, np.ones((8, 8, 1), np.uint8)), ".jpg"), tag)
        ref = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
        raw = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_UNCHANGED)
        mine = images.apply_orientation(raw, tag)
        assert mine.shape == ref.shape, tag
        assert np.abs(mine.astype(int) - ref.astype(int)).mean() < 2, tag
    assert base  # the png encoding itself worked


def _png_with_size(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def test_huge_header_is_refused_before_any_decode(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_with_size(40000, 40000))  # 1.6 gigapixels, 4.8 GB of RGB
    with pytest.raises(images.ImageTooLargeError, match="40000x40000"):
        images.read_image_size(p)
    with pytest.raises(images.ImageTooLargeError, match=str(p.name)):
        images.load_image(p)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a readable image"),
        (b"\xff\xd8\xff\xe0\x00", "not a readable image"),
    ],
)
def test_broken_files_name_the_file(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "broken (1).jpg"
    p.write_bytes(content)
    with pytest.raises(images.ImageDecodeError, match=match) as info:
        images.load_image(p)
    assert "broken (1).jpg" in str(info.value)
    assert info.value.path == p


def test_missing_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(images.ImageDecodeError, match="not found"):
        images.load_image(tmp_path / "nope.png")
    data = encode_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), ".png")
    p = tmp_path / "half.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(images.ImageDecodeError, match="truncated"):
        images.check_image_file(p)
    with pytest.raises(images.ImageDecodeError):
        images.load_image(p)
    ok = tmp_path / "ok.jpg"
    ok.write_bytes(encode_image(_bgr(), ".jpg"))
    assert images.check_image_file(ok).format == "jpeg"
    # a phone's motion photo: a video appended after the JPEG's end marker is not truncation
    motion = tmp_path / "motion.jpg"
    motion.write_bytes(ok.read_bytes() + np.random.default_rng(1).bytes(5000).replace(b"\xff\xd9", b"xx"))
    assert images.check_image_file(motion).format == "jpeg"
    cut = tmp_path / "cut.jpg"
    big = encode_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), ".jpg")
    cut.write_bytes(big[: len(big) - 600])
    with pytest.raises(images.ImageDecodeError, match="truncated"):
        images.check_image_file(cut)


def test_cache_is_lru_read_only_and_prefetches(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{i}.png", np.full((4, 5, 3), i, np.uint8)) for i in range(4)]
    cache = images.ImageCache(capacity=2)
    try:
        a = cache.get(paths[0])
        assert a is cache.get(paths[0])  # served from the cache
        assert not a.flags.writeable
        cache.get(paths[1])
        cache.get(paths[2])  # evicts paths[0]
        assert paths[0] not in cache and paths[2] in cache and len(cache) == 2

        cache.prefetch([paths[3]])
        deadline = time.monotonic() + 5
        while paths[3] not in cache and time.monotonic() < deadline:
            time.sleep(0.01)
        assert paths[3] in cache
        assert cache.get(paths[3])[0, 0, 0] == 3

        bad = tmp_path / "bad.png"
        bad.write_bytes(b"junk")
        cache.prefetch([bad])
        with pytest.raises(images.ImageDecodeError):
            cache.get(bad)
        assert bad not in cache  # failures are not cached

        current = cache.get(paths[0])
        cache.prefetch(paths[1:])  # capacity 2: only the nearest one, the image in view stays
        assert cache.get(paths[0]) is current
    finally:
        cache.close()
    assert cache.get(paths[2])[0, 0, 0] == 2  # still usable after close, without a thread


def test_cache_get_from_many_threads(tmp_path: Path) -> None:
    paths = [write_image(tmp_path / f"{i}.png", np.full((4, 5, 3), i, np.uint8)) for i in range(6)]
    cache = images.ImageCache(capacity=3)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(30):
                p = paths[(i + k) % len(paths)]
                assert cache.get(p)[0, 0, 0] == (i + k) % len(paths)
                cache.prefetch([paths[(i + k + 1) % len(paths)]])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    assert not errors
    assert len(cache) <= 3
