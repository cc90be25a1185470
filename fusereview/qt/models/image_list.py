"""The image list as a list model: file name, split, review counts and a thumbnail per image.

Counts (pending / accepted / rejected) are computed from the project's predictions and updated
only for the images an event touches. Thumbnails are made in a background thread when a row is
first shown, so that scrolling a list of 10,000 photos never decodes one in the GUI thread.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QImage

from fusereview.core.names import display_names
from fusereview.core.records import ImageRecord, ReviewState

if TYPE_CHECKING:
    from fusereview.core.events import Event
    from fusereview.core.project import Project

THUMB_SIZE = 64
CountsRole = Qt.ItemDataRole.UserRole + 1
ImageIdRole = Qt.ItemDataRole.UserRole
SplitRole = Qt.ItemDataRole.UserRole + 2
_Index = QModelIndex | QPersistentModelIndex


def make_thumbnail(path: str, size: int = THUMB_SIZE) -> np.ndarray:
    """A small RGB thumbnail of a photo (decoded at reduced size where the codec allows)."""
    from fusereview.core.images import load_image

    rgb = load_image(path)
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


class ImageListModel(QAbstractListModel):
    """Images of a project with their review counts.

    Signals
    -------
    _thumb_ready(int, object):
        Internal: a thumbnail finished in the background thread (delivered in the GUI thread).
    """

    _thumb_ready = Signal(int, object)

    def __init__(self, project: Project, *, thumbnails: bool = True) -> None:
        super().__init__()
        self.project = project
        self.images: list[ImageRecord] = project.images()
        self.rows = {img.id: i for i, img in enumerate(self.images)}
        # as the photographer named them (Roboflow's IMG_1_jpg.rf.<hash>.jpg as IMG_1.jpg)
        self.names = display_names([img.file_name for img in self.images])
        self.counts: dict[int, Counter[str]] = {}
        self._thumbs: dict[int, QImage | None] = {}
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusereview-thumbs") if thumbnails else None
        )
        self._thumb_ready.connect(self._store_thumb)
        self.recount()

    def recount(self, image_ids: set[int] | None = None) -> None:
        """Recompute counts (all images, or only some) and tell the view."""
        if image_ids is None:
            counts: dict[int, Counter[str]] = {img.id: Counter() for img in self.images}
            # one grouped query: reading 100,000 predictions with their masks would take seconds
            for image_id, state, n in self.project.db.read(
                "SELECT image_id, state, COUNT(*) FROM predictions GROUP BY image_id, state"
            ):
                counts.setdefault(image_id, Counter())[state] = n
            self.counts = counts
            if self.images:
                self.dataChanged.emit(self.index(0), self.index(len(self.images) - 1))
            return
        for image_id in image_ids:
            c: Counter[str] = Counter(
                ReviewState(p.state).value for p in self.project.predictions(image_id=image_id)
            )
            self.counts[image_id] = c
            row = self.rows.get(image_id)
            if row is not None:
                self.dataChanged.emit(self.index(row), self.index(row))

    def on_event(self, event: Event) -> None:
        """Follow a core change."""
        if event.kind == "decided":
            self.recount(self.images_of(event.ids))
        elif event.kind == "predictions_removed":
            self.recount()  # the rows are gone: their images cannot be looked up any more
        elif event.kind == "predictions_added":
            if len(event.ids) > 1000:
                self.recount()
            else:
                self.recount(self.images_of(event.ids))

    def images_of(self, prediction_ids: tuple[int, ...]) -> set[int]:
        """The images of some predictions, in one query (one per id stalled the window per chunk)."""
        ids = list(prediction_ids)
        out: set[int] = set()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            rows = self.project.db.read(
                f"SELECT DISTINCT image_id FROM predictions WHERE id IN ({','.join('?' * len(part))})", part
            )
            out.update(int(r[0]) for r in rows)
        return out

    @property
    def thumbnails_pending(self) -> int:
        """Thumbnails asked for and not made yet."""
        return sum(1 for v in self._thumbs.values() if v is None)

    def image_at(self, row: int) -> ImageRecord:
        """The image of a row."""
        return self.images[row]

    def row_of(self, image_id: int) -> int | None:
        """Row of an image id."""
        return self.rows.get(image_id)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(self.images)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.images):
            return None
        img = self.images[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            c = self.counts.get(img.id, Counter())
            done = c["accepted"] + c["edited"]
            return f"{self.names.get(img.file_name, img.file_name)}\n{c['pending']} to review · {done} ✓ {c['rejected']} ✗"
        if role == Qt.ItemDataRole.ToolTipRole:
            c = self.counts.get(img.id, Counter())
            return (
                f"{img.file_name}\n{img.width}x{img.height}, {img.split} split\n{c['pending']} pending, "
                f"{c['accepted']} accepted, {c['edited']} edited, {c['rejected']} rejected"
            )
        if role == ImageIdRole:
            return img.id
        if role == SplitRole:
            return img.split
        if role == CountsRole:
            return dict(self.counts.get(img.id, Counter()))
        if role == Qt.ItemDataRole.DecorationRole and self._pool is not None:
            return self._thumbnail(img)
        return None

    def _thumbnail(self, img: ImageRecord) -> QImage | None:
        if img.id in self._thumbs:
            return self._thumbs[img.id]
        self._thumbs[img.id] = None  # requested; filled in when ready
        assert self._pool is not None
        path = str(self.project.image_path(img.id))
        fut = self._pool.submit(make_thumbnail, path)
        fut.add_done_callback(lambda f, i=img.id: self._thumb_done(i, f))
        return None

    def _thumb_done(self, image_id: int, fut: Any) -> None:
        # runs in the pool thread: hand the pixels to the GUI thread through a queued signal
        try:
            rgb = fut.result()
        except Exception:  # an unreadable photo has no thumbnail; opening it shows the error
            rgb = None
        try:
            self._thumb_ready.emit(image_id, rgb)
        except RuntimeError:  # the model was deleted meanwhile
            return

    def _store_thumb(self, image_id: int, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self._thumbs[image_id] = QImage()  # done, nothing to show
            return
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        self._thumbs[image_id] = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        row = self.rows.get(image_id)
        if row is not None:
            self.dataChanged.emit(self.index(row), self.index(row), [Qt.ItemDataRole.DecorationRole])

    def shutdown(self) -> None:
        """Stop the thumbnail thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class ImageFilterProxy(QSortFilterProxyModel):
    """Filter box of the image list: substring of the file name, optionally one split or an id set."""

    def __init__(self) -> None:
        super().__init__()
        self.split: str | None = None
        self.text = ""
        self.ids: frozenset[int] | None = None

    def set_text(self, text: str) -> None:
        """Show file names containing ``text`` (case-insensitive)."""
        self._refilter(lambda: setattr(self, "text", text.strip().lower()))

    def set_split(self, split: str | None) -> None:
        """Show one split only (``None``: all)."""
        self._refilter(lambda: setattr(self, "split", split))

    def set_ids(self, ids: set[int] | list[int] | None) -> None:
        """Show only these images (a review set sent from the evaluation panel; ``None``: all)."""
        self._refilter(lambda: setattr(self, "ids", frozenset(ids) if ids is not None else None))

    def _refilter(self, change: Any) -> None:
        """Apply ``change`` to the filter and re-filter (Qt >= 6.10 API; invalidateFilter before)."""
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:  # older PySide6: invalidateFilter() is the only way
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, ImageListModel)
        img = model.image_at(source_row)
        if self.ids is not None and img.id not in self.ids:
            return False
        if self.split and img.split != self.split:
            return False
        if not self.text:
            return True
        shown = model.names.get(img.file_name, img.file_name)
        return self.text in img.file_name.lower() or self.text in shown.lower()
