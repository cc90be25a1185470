"""The details panel: what the selected item is (category, score, source model, area, state)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QScrollArea, QWidget

from fusereview.core.geometry import rle_area
from fusereview.qt.controller import ReviewController


class DetailsPanel(QScrollArea):
    """Read-only description of the selected prediction or annotation, read from the project.

    A scroll area: long notes ("box only: the mask disagrees with the box (IoU 0.796)") wrap and
    scroll instead of being cut off on a laptop screen.
    """

    FIELDS = ("item", "category", "score", "model", "area", "geometry", "match", "state", "decided")

    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("details_panel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self.setWidget(inner)
        form = QFormLayout(inner)
        self.labels: dict[str, QLabel] = {}
        for name in self.FIELDS:
            label = QLabel("–")
            label.setObjectName(f"details_{name}")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[name] = label
            form.addRow(name, label)
        # every selection change and every change of the shown items comes as a new context
        controller.context_changed.connect(lambda *_: self.show_key(controller.selected))

    def show_key(self, key: object) -> None:
        """Describe an item (``None`` clears)."""
        values = dict.fromkeys(self.FIELDS, "–")
        project = self.controller.project
        cats = {c.id: c.name for c in self.controller.categories}
        if isinstance(key, tuple) and key[0] == "pred":
            p = project.prediction(int(key[1]))
            ann = project.annotation(p.annotation_id) if p.annotation_id is not None else None
            cat = ann.category_id if ann is not None else p.category_id
            area = (
                ann.area
                if ann is not None
                else (rle_area(p.mask) if p.mask else (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]))
            )
            if p.agrees_with is not None:
                match = f"agreed with annotation #{p.agrees_with}"
            elif p.matched and p.state == "pending":
                kind = "matches" if p.match_kind == "match" else "repeats"
                match = f"{kind} annotation #{p.match_annotation_id} (IoU {p.match_iou or 0:.2f}); A agrees, T takes its shape"
            else:
                match = "no label of this object"
            geometry = "box only" if (ann.box_only if ann is not None else p.mask is None) else "mask"
            if ann is None and p.note:
                geometry = p.note
            values.update(
                geometry=geometry,
                match=match,
                item=f"prediction {p.id}",
                category=cats.get(cat, str(cat)),
                score=f"{p.score:.3f}",
                model=_short(p.model),
                area=f"{area:.0f} px",
                state=p.state.value if hasattr(p.state, "value") else str(p.state),
                decided=f"{p.decided_by or '?'} {p.decided_at}"
                if p.decided_at and p.state != "pending"
                else "–",
            )
        elif isinstance(key, tuple) and key[0] == "gt":
            a = project.annotation(int(key[1]))
            values.update(
                geometry="box only" if a.box_only else "mask",
                item=f"annotation #{a.id}",
                category=cats.get(a.category_id, str(a.category_id)),
                model="ground truth" if a.source == "gt" else f"drawn ({a.source})",
                area=f"{a.area:.0f} px",
                state="ground truth" if a.source == "gt" else "added",
            )
        for name, value in values.items():
            self.labels[name].setText(value)
        self.labels["model"].setToolTip(
            values["model"] if values["model"] == "–" else str(_full_model(key, project))
        )


def _short(model: str, keep: int = 22) -> str:
    """A model fingerprint short enough for the panel (``export:9ed1909c…``); the tooltip has it whole."""
    return model if len(model) <= keep else model[: keep - 1] + "…"


def _full_model(key: object, project: object) -> str:
    if isinstance(key, tuple) and key[0] == "pred":
        return project.prediction(int(key[1])).model  # type: ignore[attr-defined]
    return ""
