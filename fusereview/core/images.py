"""Read images the way the annotations saw them: RGB uint8, right size, right orientation.

- Files are read as bytes and decoded by OpenCV (``cv2.imdecode``), so paths with any characters
  work on every platform (``cv2.imread`` fails on non-ASCII paths on Windows).
- The size is read from the file header *before* decoding, and images above
  :data:`MAX_PIXELS` are refused: a crafted header claiming 2 GB of pixels must not be allocated.
- Grayscale, RGBA (alpha dropped), 16-bit and float images all come back ``HxWx3 uint8 RGB``.
- EXIF orientation is applied only when the dataset's stored width/height say that the annotations
  were made on the rotated image (see :func:`load_image`).
- :class:`ImageCache` keeps the last few images and loads the next ones in a background thread.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.file_checks import UnreadableFileError, check_regular_file

__all__ = [
    "MAX_PIXELS",
    "ImageCache",
    "ImageDecodeError",
    "ImageHeader",
    "ImageTooLargeError",
    "apply_orientation",
    "check_image_file",
    "load_image",
    "orientation_to_apply",
    "read_image_bytes",
    "read_image_header",
    "read_image_size",
]

#: Largest image accepted (width * height). 50 megapixels is a 8660x5773 photo; more is a bug or an attack.
MAX_PIXELS = 50_000_000

# How many bytes of a file the header parsers look at. JPEG's SOF marker can follow a large EXIF
# block with a thumbnail (up to 64 KiB per APP segment, several segments), hence generous.
_HEADER_BYTES = 1 << 20


class ImageDecodeError(FusereviewError):
    """An image file cannot be read or decoded; the message names the file.

    Attributes
    ----------
    path:
        The file.
    reason:
        What is wrong, without the file name (for callers that name the file their own way).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}", file=str(path))


class ImageTooLargeError(ImageDecodeError):
    """An image header claims more pixels than :data:`MAX_PIXELS`."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file header says, read without decoding the pixels.

    Attributes
    ----------
    format:
        ``"png"``, ``"jpeg"``, ``"gif"``, ``"bmp"``, ``"webp"`` or ``"tiff"``.
    width, height:
        The stored size (before any EXIF rotation).
    orientation:
        EXIF orientation tag 1..8 (1 = as stored; 5..8 swap width and height).
    """

    format: str
    width: int
    height: int
    orientation: int = 1

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` after applying the EXIF orientation."""
        if self.orientation in (5, 6, 7, 8):
            return (self.height, self.width)
        return (self.width, self.height)


# ------------------------------------------------------------------------------------------- headers


def _tiff_orientation(tiff: bytes) -> int:
    """Orientation tag (0x0112) of IFD0 of a TIFF structure (EXIF payload or a TIFF file)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (n,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
    for i in range(n):
        off = ifd + 2 + 12 * i
        if off + 12 > len(tiff):
            break
        tag, typ = struct.unpack(e + "HH", tiff[off : off + 4])
        if tag == 0x0112:
            val = struct.unpack(e + "H", tiff[off + 8 : off + 10])[0] if typ == 3 else 1
            return val if 1 <= val <= 8 else 1
    return 1


def _tiff_size(tiff: bytes) -> tuple[int, int] | None:
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return None
    (n,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
    w = h = None
    for i in range(n):
        off = ifd + 2 + 12 * i
        if off + 12 > len(tiff):
            break
        tag, typ = struct.unpack(e + "HH", tiff[off : off + 4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            val = struct.unpack(e + fmt, tiff[off + 8 : off + 8 + struct.calcsize(fmt)])[0]
            if tag == 256:
                w = val
            else:
                h = val
    return (w, h) if w and h else None


def _jpeg_header(b: bytes) -> tuple[int, int, int] | None:
    """(width, height, orientation) by walking JPEG markers up to the first SOF."""
    p = 2
    orientation = 1
    n = len(b)
    while p + 4 <= n:
        if b[p] != 0xFF:
            return None
        marker = b[p + 1]
        if marker == 0xFF:  # fill byte
            p += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            p += 2
            continue
        (length,) = struct.unpack(">H", b[p + 2 : p + 4])
        if length < 2:
            return None
        seg = b[p + 4 : p + 2 + length]
        if marker == 0xE1 and seg[:6] == b"Exif\x00\x00":
            orientation = _tiff_orientation(seg[6:])
        # SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(seg) < 5:
                return None
            h, w = struct.unpack(">HH", seg[1:5])
            return (w, h, orientation)
        if marker == 0xDA:  # start of scan before any SOF: broken
            return None
        p += 2 + length
    return None


def _parse_header(b: bytes) -> ImageHeader | None:
    if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) >= 24 and b[12:16] == b"IHDR":
        w, h = struct.unpack(">II", b[16:24])
        orientation = 1
        # An eXIf chunk (rare) carries an orientation too; it must come before IDAT.
        p = 8
        while p + 8 <= len(b):
            (length,) = struct.unpack(">I", b[p : p + 4])
            kind = b[p + 4 : p + 8]
            if kind == b"eXIf":
                orientation = _tiff_orientation(b[p + 8 : p + 8 + length])
                break
            if kind in (b"IDAT", b"IEND"):
                break
            p += 12 + length
        return ImageHeader("png", w, h, orientation)
    if b[:2] == b"\xff\xd8":
        r = _jpeg_header(b)
        return ImageHeader("jpeg", r[0], r[1], r[2]) if r else None
    if b[:6] in (b"GIF87a", b"GIF89a") and len(b) >= 10:
        w, h = struct.unpack("<HH", b[6:10])
        return ImageHeader("gif", w, h)
    if b[:2] == b"BM" and len(b) >= 26:
        (dib,) = struct.unpack("<I", b[14:18])
        if dib == 12:
            w, h = struct.unpack("<HH", b[18:22])
        else:
            w, h = struct.unpack("<ii", b[18:26])
        return ImageHeader("bmp", abs(w), abs(h))
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP" and len(b) >= 30:
        kind = b[12:16]
        if kind == b"VP8 " and b[23:26] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", b[26:30])
            return ImageHeader("webp", w & 0x3FFF, h & 0x3FFF)
        if kind == b"VP8L" and b[20] == 0x2F:
            bits = int.from_bytes(b[21:25], "little")
            return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        if kind == b"VP8X":
            w = int.from_bytes(b[24:27], "little") + 1
            h = int.from_bytes(b[27:30], "little") + 1
            return ImageHeader("webp", w, h)
        return None
    if b[:4] in (b"II*\x00", b"MM\x00*"):
        size = _tiff_size(b)
        return ImageHeader("tiff", size[0], size[1], _tiff_orientation(b)) if size else None
    return None


def read_image_header(path: str | os.PathLike[str]) -> ImageHeader:
    """Read format, stored size and EXIF orientation from a file header, without decoding.

    Raises
    ------
    ImageDecodeError
        When the file is missing, empty, or not an image format we read.
    ImageTooLargeError
        When the header claims more than :data:`MAX_PIXELS` pixels.
    """
    p = Path(path)
    try:
        _check_file(p)
        with open(p, "rb") as f:
            head = f.read(_HEADER_BYTES)
    except FileNotFoundError:
        raise ImageDecodeError(p, "image file not found") from None
    except OSError as exc:
        raise ImageDecodeError(p, f"cannot read image file: {exc.strerror or exc}") from None
    return _header_from_bytes(head, p)


def _check_file(p: Path) -> None:
    """A regular file of sane size, before anything opens it (a FIFO would block the open forever)."""
    try:
        check_regular_file(p)
    except UnreadableFileError as exc:
        raise ImageDecodeError(p, exc.reason) from None
    except ValueError as exc:  # a NUL or a lone surrogate in the name: no file system takes it
        raise ImageDecodeError(p, f"cannot be a file name ({exc})") from None


def read_image_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an image file, after :func:`check_regular_file` (kind and size).

    Raises
    ------
    ImageDecodeError
        Missing, not a regular file (FIFO, device, folder), too large, or unreadable.
    """
    p = Path(path)
    try:
        _check_file(p)
        return p.read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(p, "image file not found") from None
    except OSError as exc:
        raise ImageDecodeError(p, f"cannot read image file: {exc.strerror or exc}") from None


def _header_from_bytes(head: bytes, p: Path) -> ImageHeader:
    if not head:
        raise ImageDecodeError(p, "image file is empty (0 bytes)")
    try:
        header = _parse_header(head)
    except (struct.error, IndexError):
        header = None
    if header is None:
        raise ImageDecodeError(p, "not a readable image (unknown format or corrupt header)")
    if header.width <= 0 or header.height <= 0:
        raise ImageDecodeError(p, f"image header says {header.width}x{header.height} pixels")
    if header.width * header.height > MAX_PIXELS:
        raise ImageTooLargeError(
            p,
            f"image header claims {header.width}x{header.height} pixels "
            f"(more than the {MAX_PIXELS // 1_000_000} megapixel limit)",
        )
    return header


def check_image_file(path: str | os.PathLike[str]) -> ImageHeader:
    """Cheap integrity check of an image file: readable header, size limit, and an intact end.

    Reads the header and the last kilobyte only (fast enough for 10,000 images). A PNG must end
    with its ``IEND`` chunk and a JPEG with its end-of-image marker: a half-copied file fails here
    even though its header is fine. A full decode (:func:`load_image`) catches the rest.

    Raises
    ------
    ImageDecodeError
        Missing, empty, unreadable, truncated or (:class:`ImageTooLargeError`) too large.
    """
    header = read_image_header(path)
    p = Path(path)
    if header.format in ("png", "jpeg"):
        try:
            with open(p, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 1024))
                tail = f.read()
        except OSError as exc:
            raise ImageDecodeError(p, f"cannot read image file: {exc.strerror or exc}") from None
        end_marker = b"IEND" if header.format == "png" else b"\xff\xd9"
        if end_marker not in tail and not (header.format == "jpeg" and _jpeg_has_end(p)):
            raise ImageDecodeError(p, f"{header.format.upper()} file is truncated (no end marker)")
    return header


def _jpeg_has_end(p: Path) -> bool:
    """Whether the main image of a JPEG ends with its EOI marker somewhere in the file.

    Phones append data after the image (motion photos carry a whole video), so the end marker need
    not be at the end of the file. In the entropy-coded data after the first start-of-scan every
    0xFF byte is escaped, so the first ``FF D9`` after it is the image's true end.
    """
    try:
        b = p.read_bytes()
    except OSError:
        return False
    pos = 2
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            return False
        marker = b[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xDA:
            return b.find(b"\xff\xd9", pos) != -1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        pos += 2 + int.from_bytes(b[pos + 2 : pos + 4], "big")
    return False


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` as stored in the file header; refuses more than 50 megapixels.

    Raises
    ------
    ImageDecodeError
        Missing, empty or unreadable file, or (:class:`ImageTooLargeError`) too many pixels.
    """
    h = read_image_header(path)
    return (h.width, h.height)


# ------------------------------------------------------------------------------------------- decoding


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip an image as EXIF orientation ``1..8`` asks (what a photo viewer shows)."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:
        return np.swapaxes(img, 0, 1)
    if orientation == 6:
        return np.swapaxes(img, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(img, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(img, 0, 1)[::-1]
    return img


def _to_rgb8(img: np.ndarray, p: Path) -> np.ndarray:
    if img.dtype == np.uint16:
        # Full 16-bit range onto 8 bits (65535 / 257 = 255), the same scale every viewer uses.
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageDecodeError(p, f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:
        # Drop alpha rather than composite: the model and the labeler see the colours as stored,
        # and compositing would invent a background the annotations were not made on.
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise ImageDecodeError(p, f"unsupported number of channels ({channels})")


def load_image(path: str | os.PathLike[str], *, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Load an image as ``HxWx3 uint8 RGB``.

    Parameters
    ----------
    path:
        The image file (any characters; read as bytes).
    expected_size:
        ``(width, height)`` the dataset stores for this image. EXIF orientation is applied only
        when it swaps width and height *and* ``expected_size`` matches the rotated size: then the
        annotations were made on the rotated image. Otherwise the pixels come as stored, because
        Roboflow and most tools annotate (and export) the stored pixels. A size that matches
        neither is an error, since the annotations would not fit the pixels.

    Raises
    ------
    ImageDecodeError
        Missing, empty, corrupt, too large (:class:`ImageTooLargeError`) or of the wrong size.
    """
    p = Path(path)
    data = read_image_bytes(p)
    header = _header_from_bytes(data[:_HEADER_BYTES], p)
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_UNCHANGED keeps 16-bit and alpha and ignores EXIF orientation: we decide on that below.
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageDecodeError(p, "image data is corrupt or truncated (OpenCV cannot decode it)")
    stored = (img.shape[1], img.shape[0])
    if stored != (header.width, header.height):
        raise ImageDecodeError(
            p,
            f"decoded size {stored[0]}x{stored[1]} differs from the header's {header.width}x{header.height}",
        )
    rgb = _to_rgb8(img, p)
    orientation = orientation_to_apply(header, expected_size)
    if orientation is None:
        assert expected_size is not None
        raise ImageDecodeError(
            p,
            f"image is {stored[0]}x{stored[1]} pixels but the dataset says "
            f"{int(expected_size[0])}x{int(expected_size[1])}",
        )
    if orientation != 1:
        rgb = np.ascontiguousarray(apply_orientation(rgb, orientation))
    return rgb


def orientation_to_apply(header: ImageHeader, expected_size: tuple[int, int] | None) -> int | None:
    """The EXIF orientation to apply to the stored pixels (1: none), or None when sizes disagree.

    The one rule (ADR 0011) for every decoder, :func:`load_image` and the canvas's reduced-size
    overview alike: rotate only when the orientation swaps width and height *and* the dataset's
    size is the rotated one. A square photo with orientation 6 is therefore shown as stored.
    """
    if expected_size is None:
        return 1
    stored = (header.width, header.height)
    expected = (int(expected_size[0]), int(expected_size[1]))
    if expected == stored:
        return 1
    if header.orientation in (5, 6, 7, 8) and expected == (stored[1], stored[0]):
        return header.orientation
    return None


# ------------------------------------------------------------------------------------------- cache


class ImageCache:
    """A small thread-safe LRU cache of decoded images, with background prefetch.

    Images are returned read-only (``flags.writeable`` is False) because the same array is handed to
    every caller: copy before drawing on it.

    Parameters
    ----------
    capacity:
        How many images to keep. A 4000x3000 RGB image is 36 MB: keep this small.
    """

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, tuple[int, int] | None], Future[np.ndarray]] = OrderedDict()
        # One worker: prefetch is for "the next few images", and decoding competes with the UI for CPU.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusereview-prefetch")
        self._closed = False

    @staticmethod
    def _key(
        path: str | os.PathLike[str], expected_size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int] | None]:
        size = None if expected_size is None else (int(expected_size[0]), int(expected_size[1]))
        return (os.path.abspath(os.fspath(path)), size)

    @staticmethod
    def _load(path: str, expected_size: tuple[int, int] | None) -> np.ndarray:
        img = load_image(path, expected_size=expected_size)
        img.setflags(write=False)
        return img

    def _evict(self) -> None:
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, (str, os.PathLike)):
            return False
        absolute = os.path.abspath(os.fspath(path))
        with self._lock:
            return any(
                k[0] == absolute and f.done() and f.exception() is None for k, f in self._items.items()
            )

    def get(
        self, path: str | os.PathLike[str], *, expected_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The image at ``path`` (see :func:`load_image`), from the cache when there.

        Waits for a prefetch of the same image that is under way instead of decoding it twice.
        A failed load is not cached: the error is raised and the next ``get`` tries again.
        """
        key = self._key(path, expected_size)
        with self._lock:
            fut = self._items.get(key)
            if fut is not None:
                self._items.move_to_end(key)
        if fut is None:
            img = self._load(key[0], key[1])
            done: Future[np.ndarray] = Future()
            done.set_result(img)
            with self._lock:
                self._items[key] = done
                self._items.move_to_end(key)
                self._evict()
            return img
        if fut.cancelled():  # a prefetch dropped by close(): load it here instead
            with self._lock:
                if self._items.get(key) is fut:
                    del self._items[key]
            return self.get(path, expected_size=expected_size)
        try:
            return fut.result()
        except BaseException:
            # Do not keep the failure: the next get() tries again (the file may have been fixed).
            with self._lock:
                if self._items.get(key) is fut:
                    del self._items[key]
            raise

    def prefetch(
        self,
        paths: list[str | os.PathLike[str]] | list[tuple[str | os.PathLike[str], tuple[int, int] | None]],
    ) -> None:
        """Start loading images in the background (the next ones the user will look at).

        Parameters
        ----------
        paths:
            Paths, or ``(path, expected_size)`` pairs, nearest first. Only the first
            ``capacity - 1`` are loaded, so that prefetching neither evicts itself nor the image
            in view.
        """
        if self._closed:
            return
        # Leave room for the image being looked at (the most recent get), so prefetching never evicts it.
        room = max(1, self.capacity - 1)
        items = [(p, None) if not isinstance(p, tuple) else p for p in paths][:room]
        with self._lock:
            for path, size in items:
                key = self._key(path, size)
                if key in self._items:
                    continue
                self._items[key] = self._pool.submit(self._load, key[0], key[1])
                self._evict()

    def clear(self) -> None:
        """Forget every cached image (a running prefetch finishes but is not kept)."""
        with self._lock:
            self._items.clear()

    def close(self) -> None:
        """Stop the prefetch thread; pending prefetches are cancelled."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
