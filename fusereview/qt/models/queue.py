"""The review queue as a table model over the core's list of queue items (tuples, not widgets).

A queue of 100,000 pending predictions is one Python list; the view asks only for the rows it
shows. Decisions remove rows one by one (cheap); anything that may add rows (undo, a model run,
another filter) re-reads the queue from the core.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from fusereview.core.records import ReviewState

if TYPE_CHECKING:
    from fusereview.core.events import Event
    from fusereview.core.review import QueueItem, ReviewSession

ORDERS = {"score_asc": "lowest score first", "score_desc": "highest score first", "image": "by image"}
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows and in which order (arguments of ``ReviewSession.queue``)."""

    order: str = "score_asc"
    split: str | None = None
    category_id: int | None = None
    score_min: float = 0.0
    score_max: float = 1.0
    #: False: only predictions that match no annotation (the default: what a reviewer must
    #: decide); True: only matched ones; None: all.
    matched: bool | None = False

    def with_(self, **changes: Any) -> QueueFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)


class RowsTableModel(QAbstractTableModel):
    """A table model over a Python list ``rows()`` with fixed column ``HEADERS`` (subclasses add ``data``)."""

    HEADERS: tuple[str, ...] = ()

    def rows(self) -> list[Any]:
        """The rows shown."""
        raise NotImplementedError

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(self.rows())

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt API)
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None


class QueueModel(RowsTableModel):
    """Pending predictions across the dataset: columns image, category, score, the annotation matched.

    Parameters
    ----------
    session:
        The review session whose ``queue()`` this model shows.
    image_names, category_names:
        Display names by id (read once; they do not change during a review).
    """

    HEADERS = ("image", "category", "score", "match")

    def __init__(
        self,
        session: ReviewSession,
        image_names: dict[int, str] | None = None,
        category_names: dict[int, str] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.filter = QueueFilter()
        self.items: list[QueueItem] = []
        self._rows: dict[int, int] | None = None  # prediction id -> row, built when needed
        self.image_names = image_names or {}
        self.category_names = category_names or {}

    # --- reading the core -----------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the queue from the core with the current filter."""
        f = self.filter
        items = self.session.queue(
            f.order,
            split=f.split,
            category_id=f.category_id,
            score_min=f.score_min,
            score_max=f.score_max,
            states=(ReviewState.PENDING,),
            matched=f.matched,
        )
        self.beginResetModel()
        self.items = list(items)
        self._rows = None
        self.endResetModel()

    def set_filter(self, new: QueueFilter) -> None:
        """Show another order or subset."""
        if new.order not in ORDERS:
            raise ValueError(f"unknown queue order {new.order!r}; expected one of {sorted(ORDERS)}")
        self.filter = new
        self.refresh()

    def on_event(self, event: Event) -> None:
        """Follow a core change: drop decided rows, re-read when rows may appear."""
        if event.kind == "decided":
            rows = self._row_index()
            gone = []
            for pid in event.ids:
                state = ReviewState(self.session.project.prediction(pid).state)
                if state is ReviewState.PENDING:
                    if pid not in rows:
                        self.refresh()  # an undo brought it back: find its place in the order
                        return
                elif pid in rows:
                    gone.append(rows[pid])
            for row in sorted(gone, reverse=True):
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.items[row]
                self.endRemoveRows()
            if gone:
                self._rows = None
        elif event.kind in ("predictions_added", "prompt_changed"):
            self.refresh()
        elif event.kind == "matches_changed":
            # a label was added, edited or deleted: predictions may now (not) repeat it
            if self.filter.matched is None:
                self.dataChanged.emit(
                    self.index(0, 0), self.index(len(self.items) - 1, len(self.HEADERS) - 1)
                )
            else:
                self.refresh()
        elif event.kind == "predictions_removed":
            # superseded by a newer model run: the rows are gone from the database
            rows = self._row_index()
            for row in sorted((rows[pid] for pid in event.ids if pid in rows), reverse=True):
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.items[row]
                self.endRemoveRows()
            self._rows = None

    def _row_index(self) -> dict[int, int]:
        if self._rows is None:
            self._rows = {item.prediction_id: i for i, item in enumerate(self.items)}
        return self._rows

    def row_of(self, prediction_id: int) -> int | None:
        """Row of a prediction, or ``None`` when it is not in the queue."""
        return self._row_index().get(prediction_id)

    def item(self, row: int) -> QueueItem | None:
        """The queue item of a row (``None`` outside)."""
        return self.items[row] if 0 <= row < len(self.items) else None

    # --- Qt model API -------------------------------------------------------------------------
    def rows(self) -> list[QueueItem]:
        return self.items

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.items):
            return None
        item = self.items[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self.image_names.get(item.image_id, str(item.image_id))
            if col == 1:
                return self.category_names.get(item.category_id, str(item.category_id))
            if col == 2:
                return f"{item.score:.3f}"
            return "" if item.match_annotation_id is None else f"#{item.match_annotation_id}"
        if role == Qt.ItemDataRole.ToolTipRole and col == 3 and item.match_annotation_id is not None:
            return f"matches annotation {item.match_annotation_id}: accepting records agreement (T takes its geometry)"
        if role == Qt.ItemDataRole.UserRole:
            return item.prediction_id
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
