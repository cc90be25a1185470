"""The evaluation panel: metrics, precision-recall curve, images by errors, comparison of two models.

A standalone widget the main window docks. It talks to the rest of the application through two
signals only (plain data):

``imageActivated(int image_id, dict overlays)``
    The user picked an image. ``image_id`` is the project's image id when the panel has a project
    (else the evaluation's own id). ``overlays`` holds ``true_positives``, ``false_positives``,
    ``duplicates``, ``false_negatives`` (lists of dicts with ``bbox`` xywh, ``segmentation``,
    ``score``, ``iou``, ``annotation_id``, ``category_id``), ``colors`` (kind -> ``"#rrggbb"``),
    ``file_name``, ``coco_image_id`` and ``iou_threshold``.
``reviewRequested(list false_negatives, list false_positives)``
    "Send to review": the missed objects and the false positives scoring below the chosen score,
    each a dict with ``image_id`` (as above), ``bbox``, ``category_id`` and, for a false positive,
    ``score``.
"""

from __future__ import annotations

from dataclasses import asdict
from html import escape
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from fusereview.core.errors import FusereviewError
from fusereview.core.names import display_name
from fusereview.evaluation.cocoeval import METRIC_NAMES, Evaluation, format_value, run_evaluation
from fusereview.evaluation.compare import STATUSES, Comparison, compare
from fusereview.evaluation.errors import ImageErrors
from fusereview.evaluation.operating_point import (
    REVIEW_THRESHOLD_SETTING,
    choose_operating_point,
    errors_at,
)
from fusereview.evaluation.plots import OUTCOME_COLORS
from fusereview.evaluation.run_folder import EvaluationFile, read_evaluation_file
from fusereview.qt.panels.plot_legend import outside_legend
from fusereview.qt.workers import Job, JobRunner

KINDS = {"tp": "true_positives", "fp": "false_positives", "duplicates": "duplicates", "fn": "false_negatives"}
COLORS = {KINDS[k]: "#{:02x}{:02x}{:02x}".format(*rgb) for k, rgb in OUTCOME_COLORS.items()}


class EvaluateJob(Job):
    """Run an evaluation in a worker thread (inputs are plain data gathered in the GUI thread)."""

    title = "evaluate"

    def __init__(
        self, gt: dict[str, Any], results: list[dict[str, Any]], iou_types: list[str], **kwargs: Any
    ) -> None:
        super().__init__()
        self.gt, self.results, self.iou_types, self.kwargs = gt, results, iou_types, kwargs

    def work(self) -> dict[str, Evaluation]:
        """Evaluate for every IoU type."""
        return {t: run_evaluation(self.gt, self.results, iou_type=t, **self.kwargs) for t in self.iou_types}


class CompareModelsJob(Job):
    """Predict one split with two models (in memory, nothing stored) and evaluate both.

    Used when a training run ends: its best model against the model it started from. Predictions
    are not stored in the project, since a new model's predictions replace the pending ones of
    the old (the review queue shows current predictions only).
    """

    title = "compare models"

    def __init__(
        self,
        gt: dict[str, Any],
        image_paths: dict[int, str],
        prompts: list[tuple[int, str]],
        models: list[str],
        *,
        split: str,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.gt, self.image_paths, self.prompts = gt, image_paths, prompts
        self.models, self.split, self.device = list(models), split, device

    def work(self) -> list[dict[str, Evaluation]]:
        """``[evaluations of model 0, evaluations of model 1, ...]`` (bbox and segm each)."""
        from fusereview.evaluation.inputs import GroundTruth, model_results

        truth = GroundTruth(
            "project", self.split, self.gt, image_paths=self.image_paths, prompts=self.prompts
        )
        n = len(self.gt["images"])
        out = []
        for k, spec in enumerate(self.models):
            if self.stop_requested:
                break
            results, _ = model_results(
                truth,
                spec,
                device=self.device,
                progress=lambda done, _total, k=k: self.progress.emit(k * n + done, n * len(self.models)),
            )
            out.append(
                {
                    t: run_evaluation(
                        self.gt, results, iou_type=t, image_paths=self.image_paths, missing_masks="box"
                    )
                    for t in ("bbox", "segm")
                }
            )
        return out


class EvaluationPanel(QWidget):
    """Metrics table, PR curve, images sorted by errors, and the comparison of two evaluations.

    Parameters
    ----------
    project:
        The open project (optional): image ids are mapped to its ids, and its stored predictions
        can be evaluated from the panel.
    """

    imageActivated = Signal(int, dict)
    reviewRequested = Signal(list, list)
    evaluationChanged = Signal()

    def __init__(self, project: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluation_panel")
        self.project = project
        self.evaluations: dict[str, Evaluation] = {}
        self.split = ""
        self.label = ""
        self.comparison: Comparison | None = None
        self._other: dict[str, Evaluation] = {}
        self._to_project: dict[int, int] = {}
        self.runner = JobRunner(self)
        self.last_error = ""

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.open_button = QPushButton("Open evaluation…")
        self.open_button.clicked.connect(self._open_dialog)
        self.model_box = QComboBox()
        self.model_box.setToolTip("stored predictions of this model are evaluated")
        self.split_box = QComboBox()
        self.evaluate_button = QPushButton("Evaluate stored predictions")
        self.evaluate_button.clicked.connect(self.evaluate_project)
        self.iou_type_box = QComboBox()
        self.iou_box = QComboBox()
        for t in (0.5, 0.75):
            self.iou_box.addItem(f"IoU {t:g}", t)
        self.iou_type_box.currentIndexChanged.connect(self._refresh)
        self.iou_box.currentIndexChanged.connect(self._refresh)
        for w in (
            self.open_button,
            self.model_box,
            self.split_box,
            self.evaluate_button,
            self.iou_type_box,
            self.iou_box,
        ):
            bar.addWidget(w)
        bar.addStretch(1)
        layout.addLayout(bar)
        self.status = QLabel(
            "No evaluation yet: open a file from 'fusereview eval --json' or evaluate stored predictions."
        )
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)

        # Tab 1: metrics + PR curve + images by errors
        overview = QSplitter(Qt.Orientation.Horizontal)
        self.metrics_table = QTableWidget(len(METRIC_NAMES), 2)
        self.metrics_table.setHorizontalHeaderLabels(["boxes", "masks"])
        self.metrics_table.setVerticalHeaderLabels(list(METRIC_NAMES))
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.setMinimumWidth(230)  # names and two 3-decimal columns stay readable
        overview.addWidget(self.metrics_table)
        # on the dark ground of the training plots (a white plot's legend was light grey on white),
        # its legend beside the axes: the curve runs along precision 1.0, where a legend inside sat
        self.pr_plot = pg.PlotWidget()
        self.pr_plot.setLabel("bottom", "recall")
        self.pr_plot.setLabel("left", "precision")
        self.pr_plot.setXRange(0, 1)
        self.pr_plot.setYRange(0, 1.02)
        legend = outside_legend(self.pr_plot)
        self.pr_curve = self.pr_plot.plot([], [], pen=pg.mkPen("#4fa3e0", width=2))
        self.best_marker = self.pr_plot.plot([], [], pen=None, symbol="o", symbolBrush="#ff5a4f")
        legend.addItem(self.pr_curve, "precision-recall")
        legend.addItem(self.best_marker, "best F1")
        overview.addWidget(self.pr_plot)
        images_box = QWidget()
        images_layout = QVBoxLayout(images_box)
        images_layout.setContentsMargins(0, 0, 0, 0)
        self.images_table = QTableWidget(0, 6)
        self.images_table.setHorizontalHeaderLabels(
            ["image", "errors", "missed", "false pos.", "duplicates", "found"]
        )
        self._setup_list(self.images_table)
        self.images_table.itemSelectionChanged.connect(self._image_selected)
        images_layout.addWidget(self.images_table, 1)
        send = QHBoxLayout()
        send.addWidget(QLabel("false positives below score"))
        self.fp_score = QDoubleSpinBox()
        self.fp_score.setRange(0.0, 1.0)
        self.fp_score.setSingleStep(0.05)
        self.fp_score.setValue(0.5)
        send.addWidget(self.fp_score)
        self.send_button = QPushButton("Send missed + low-score false positives to review")
        self.send_button.clicked.connect(self.send_to_review)
        send.addWidget(self.send_button)
        images_layout.addLayout(send)
        overview.addWidget(images_box)
        overview.setSizes([220, 320, 420])
        self.tabs.addTab(overview, "Evaluation")

        # Tab 2: comparison
        cmp_box = QWidget()
        cmp_layout = QVBoxLayout(cmp_box)
        row = QHBoxLayout()
        self.compare_button = QPushButton("Compare with…")
        self.compare_button.clicked.connect(self._compare_dialog)
        self.filter_box = QComboBox()
        self.filter_box.addItem("all images", None)
        for s in STATUSES:
            self.filter_box.addItem(s, s)
        self.filter_box.currentIndexChanged.connect(self._fill_comparison)
        row.addWidget(self.compare_button)
        row.addWidget(QLabel("show"))
        row.addWidget(self.filter_box)
        row.addStretch(1)
        cmp_layout.addLayout(row)
        self.compare_summary = QLabel("")
        self.compare_summary.setWordWrap(True)
        cmp_layout.addWidget(self.compare_summary)
        self.compare_metrics = QTableWidget(len(METRIC_NAMES), 3)
        self.compare_metrics.setHorizontalHeaderLabels(["A", "B", "change"])
        self.compare_metrics.setVerticalHeaderLabels(list(METRIC_NAMES))
        self.compare_metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.compare_table = QTableWidget(0, 5)
        self.compare_table.setHorizontalHeaderLabels(["image", "status", "errors A", "errors B", "change"])
        self._setup_list(self.compare_table)
        self.compare_table.itemSelectionChanged.connect(self._compare_selected)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.compare_metrics)
        split.addWidget(self.compare_table)
        cmp_layout.addWidget(split, 1)
        self.tabs.addTab(cmp_box, "Comparison")

        self.set_project(project)

    # --- setup ---------------------------------------------------------------------------------
    @staticmethod
    def _setup_list(table: QTableWidget) -> None:
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def set_project(self, project: Any) -> None:
        """Use ``project`` (or none): fills the model and split choices."""
        self.project = project
        self.model_box.clear()
        self.split_box.clear()
        has = project is not None
        for w in (self.model_box, self.split_box, self.evaluate_button):
            w.setVisible(has)
        if not has:
            return
        for name in project.splits():
            self.split_box.addItem(name, name)
        if "test" in project.splits():
            self.split_box.setCurrentIndex(project.splits().index("test"))
        models = sorted({p.model for p in project.predictions()})
        for m in models:
            self.model_box.addItem(m, m)
        self.evaluate_button.setEnabled(bool(models))

    def closeEvent(self, event: Any) -> None:
        """Wait for a running evaluation: a destroyed running QThread aborts the process."""
        self.runner.stop_all()
        super().closeEvent(event)

    # --- inputs --------------------------------------------------------------------------------
    def set_evaluation(
        self,
        evaluations: dict[str, Evaluation],
        *,
        split: str = "",
        label: str = "",
        project_ids: bool = False,
    ) -> None:
        """Show ``evaluations`` (IoU type -> Evaluation) of ``split``.

        ``project_ids``: the evaluation already uses the project's image ids (else they are the
        split's COCO ids, mapped to the project's when the panel has a project).
        """
        self.evaluations = dict(evaluations)
        self.split = split
        self.label = label
        self._to_project = {} if project_ids else self._project_ids(split)
        self.iou_type_box.blockSignals(True)
        self.iou_type_box.clear()
        for t in self.evaluations:
            self.iou_type_box.addItem("masks" if t == "segm" else "boxes", t)
        self.iou_type_box.blockSignals(False)
        first = next(iter(self.evaluations.values()), None)
        if first is not None:
            self.status.setText(
                f"{label or 'evaluation'} on {split or 'a split'}: {first.n_images} images, "
                f"{first.n_objects} objects, {first.n_detections} detections"
            )
        self._fill_metrics()
        self._refresh()
        self.evaluationChanged.emit()

    def load_file(self, path: str | Path) -> None:
        """Show an evaluation written by ``fusereview eval --json``."""
        f: EvaluationFile = read_evaluation_file(path)
        self.set_evaluation(f.evaluations, split=f.split, label=f.model or Path(path).name)

    def _project_ids(self, split: str) -> dict[int, int]:
        # Evaluations of a split use the input's COCO ids; the canvas uses the project's ids.
        if self.project is None:
            return {}
        if not split or split not in self.project.splits():
            return {}
        return {int(self.project.coco_image_id(r.id)): r.id for r in self.project.images(split)}

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open evaluation", "", "Evaluation (*.json)")
        if path:
            self._try(lambda: self.load_file(path))

    def _compare_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with evaluation", "", "Evaluation (*.json)")
        if path:
            self._try(
                lambda: self.compare_with(read_evaluation_file(path).evaluations, label=Path(path).name)
            )

    def _try(self, action: Any) -> None:
        try:
            action()
        except FusereviewError as exc:
            self.last_error = str(exc)
            self.status.setText(f"<b>Cannot use that:</b> {exc}")

    def evaluate_project(self) -> EvaluateJob | None:
        """Evaluate the chosen model's stored predictions on the chosen split (in a worker thread)."""
        if self.project is None or self.model_box.currentData() is None:
            return None
        split, model = self.split_box.currentData(), self.model_box.currentData()
        # Database reads stay in this thread; only the evaluation runs in the worker. The
        # project's own ids are used on both sides, so no mapping is needed afterwards.
        gt = self.project.to_coco_dict(split, ids="project")
        image_ids = {im["id"] for im in gt["images"]}
        results = []
        for p in self.project.predictions(model=model):
            if p.image_id not in image_ids:
                continue
            x0, y0, x1, y1 = p.box
            r: dict[str, Any] = {
                "image_id": p.image_id,
                "category_id": p.category_id,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": p.score,
            }
            if p.mask is not None:
                r["segmentation"] = p.mask
            results.append(r)
        types = ["bbox", "segm"] if results and all("segmentation" in r for r in results) else ["bbox"]
        paths = {im["id"]: str(self.project.image_path(im["id"])) for im in gt["images"]}
        job = EvaluateJob(gt, results, types, image_paths=paths, results_name=f"predictions of {model}")
        job.finished.connect(
            lambda evs, s=split, m=model: self.set_evaluation(evs, split=s, label=m, project_ids=True)
        )
        job.failed.connect(self._failed)
        self.status.setText(f"evaluating {model} on {split}…")
        self.runner.start(job)
        return job

    def compare_models(
        self, base: str, base_label: str, new: str, new_label: str, *, split: str = "test"
    ) -> CompareModelsJob | None:
        """Evaluate ``base`` (shown, A) and ``new`` (B) on ``split`` of the project, and compare them.

        Runs in a worker thread; the panel shows A's numbers and the comparison tab B − A.
        """
        if self.project is None:
            return None
        if split not in self.project.splits():
            split = "valid" if "valid" in self.project.splits() else self.project.splits()[0]
        gt = self.project.to_coco_dict(split, ids="project")
        paths = {im["id"]: str(self.project.image_path(im["id"])) for im in gt["images"]}
        prompts = [(c.id, c.prompt or c.name) for c in self.project.categories()]
        job = CompareModelsJob(gt, paths, prompts, [base, new], split=split)

        def done(evs: list[dict[str, Evaluation]]) -> None:
            if len(evs) < 2:
                self.status.setText("comparison stopped")
                return
            self.set_evaluation(evs[0], split=split, label=base_label, project_ids=True)
            self.compare_with(evs[1], label=new_label)

        job.finished.connect(done)
        job.failed.connect(self._failed)
        self.status.setText(f"evaluating {base_label} and {new_label} on {split}…")
        self.runner.start(job)
        return job

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.status.setText(f"<b>Evaluation failed:</b> {message}")

    # --- display -------------------------------------------------------------------------------
    def current(self) -> Evaluation | None:
        """The evaluation shown (the chosen IoU type)."""
        return self.evaluations.get(self.iou_type_box.currentData()) if self.evaluations else None

    def iou(self) -> float:
        """The chosen IoU threshold."""
        return float(self.iou_box.currentData())

    def _fill_metrics(self) -> None:
        for col, t in enumerate(("bbox", "segm")):
            ev = self.evaluations.get(t)
            for row, name in enumerate(METRIC_NAMES):
                value = ev.metrics.values.get(name) if ev else None
                item = QTableWidgetItem("—" if ev is None else format_value(value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.metrics_table.setItem(row, col, item)

    def _refresh(self) -> None:
        ev = self.current()
        self.images_table.setRowCount(0)
        if ev is None:
            self.pr_curve.setData([], [])
            self.best_marker.setData([], [])
            return
        analysis = ev.errors(self.iou())
        self.pr_curve.setData(analysis.pr_curve.recall, analysis.pr_curve.precision)
        if analysis.best_f1 is not None:
            self.best_marker.setData([analysis.best_f1.recall], [analysis.best_f1.precision])
            self.fp_score.setValue(round(analysis.best_f1.threshold, 2))
        else:
            self.best_marker.setData([], [])
        # per-image counts at the operating point (named in the header), not down to the
        # evaluator's floor: hundreds of weak detections are not what a reviewer looks at
        op = choose_operating_point(analysis, review_threshold=self._review_threshold())
        self.images_table.setToolTip(f"counted at {op.describe()}")
        self.images_table.horizontalHeaderItem(1).setText(f"errors at ≥ {op.threshold:.2f}")
        at_op = [errors_at(e, op.threshold) for e in analysis.images]
        rows = sorted(at_op, key=lambda e: (-e.n_errors, -len(e.false_negatives), e.image_id))
        self.images_table.setRowCount(len(rows))
        for r, e in enumerate(rows):
            values = [
                display_name(e.file_name) if e.file_name else str(e.image_id),
                e.n_errors,
                len(e.false_negatives),
                len(e.false_positives),
                len(e.duplicates),
                len(e.true_positives),
            ]
            for c, v in enumerate(values):
                item = QTableWidgetItem(str(v))
                if c == 0:
                    item.setToolTip(e.file_name or "")
                    item.setData(Qt.ItemDataRole.UserRole, e.image_id)
                    if e.n_errors:
                        item.setForeground(
                            QColor(
                                COLORS["false_negatives"] if e.false_negatives else COLORS["false_positives"]
                            )
                        )
                self.images_table.setItem(r, c, item)

    def _review_threshold(self) -> float | None:
        """The project's review threshold (the operating point when set), if any."""
        if self.project is None:
            return None
        value = self.project.get_setting(REVIEW_THRESHOLD_SETTING)
        return float(value) if isinstance(value, (int, float)) else None

    def image_errors(self, image_id: int, ev: Evaluation | None = None) -> ImageErrors | None:
        """The errors of one image (evaluation id) at the chosen IoU."""
        ev = ev or self.current()
        if ev is None:
            return None
        return next((e for e in ev.errors(self.iou()).images if e.image_id == image_id), None)

    def overlays(self, errors: ImageErrors) -> dict[str, Any]:
        """The ``imageActivated`` overlay dict of one image."""
        return {
            "file_name": errors.file_name,
            "coco_image_id": errors.image_id,
            "iou_threshold": errors.iou_threshold,
            "colors": dict(COLORS),
            "true_positives": [asdict(o) for o in errors.true_positives],
            "false_positives": [asdict(o) for o in errors.false_positives],
            "duplicates": [asdict(o) for o in errors.duplicates],
            "false_negatives": [asdict(o) for o in errors.false_negatives],
        }

    def activate(self, image_id: int, ev: Evaluation | None = None) -> None:
        """Emit ``imageActivated`` for an image given by its evaluation id."""
        errors = self.image_errors(image_id, ev)
        if errors is not None:
            self.imageActivated.emit(int(self._to_project.get(image_id, image_id)), self.overlays(errors))

    def _image_selected(self) -> None:
        rows = self.images_table.selectionModel().selectedRows()
        if rows:
            item = self.images_table.item(rows[0].row(), 0)
            self.activate(int(item.data(Qt.ItemDataRole.UserRole)))

    def review_lists(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Missed objects and low-score false positives (and duplicates) at the chosen IoU."""
        ev = self.current()
        if ev is None:
            return [], []
        limit = self.fp_score.value()
        fns, fps = [], []
        for e in ev.errors(self.iou()).images:
            pid = int(self._to_project.get(e.image_id, e.image_id))
            for m in e.false_negatives:
                fns.append(
                    {
                        "image_id": pid,
                        "annotation_id": m.annotation_id,
                        "bbox": list(m.bbox),
                        "category_id": m.category_id,
                        "segmentation": m.segmentation,
                    }
                )
            for o in (*e.false_positives, *e.duplicates):
                if o.score < limit:
                    fps.append(
                        {
                            "image_id": pid,
                            "result_index": o.result_index,
                            "bbox": list(o.bbox),
                            "category_id": o.category_id,
                            "score": o.score,
                            "segmentation": o.segmentation,
                        }
                    )
        return fns, fps

    def send_to_review(self) -> None:
        """Emit ``reviewRequested`` with the missed objects and the low-score false positives."""
        fns, fps = self.review_lists()
        self.reviewRequested.emit(fns, fps)
        self.status.setText(
            f"sent {len(fns)} missed objects and {len(fps)} false positives below {self.fp_score.value():.2f} to review"
        )

    # --- comparison ----------------------------------------------------------------------------
    def compare_with(self, other: dict[str, Evaluation], *, label: str = "B") -> Comparison | None:
        """Compare the shown evaluation (A) with ``other`` (B) of the same split."""
        ev = self.current()
        if ev is None or ev.iou_type not in other:
            raise FusereviewError(
                "open an evaluation first, with the same IoU type as the one to compare with"
            )
        self._other = dict(other)
        review = self._review_threshold()
        self.comparison = compare(
            ev,
            other[ev.iou_type],
            iou=self.iou(),
            label_a=self.label or "A",
            label_b=label,
            review_threshold=review,
        )
        c = self.comparison
        counts = c.status_counts()
        self.compare_summary.setText(
            f"<b>{escape(c.verdict)}</b><br>A: {escape(self.label or 'shown evaluation')} — B: "
            f"{escape(label)}. At {escape(c.operating_point.describe())}, IoU {c.iou_threshold:g}: "
            f"errors {c.totals_a.errors} → {c.totals_b.errors}; "
            + ", ".join(f"{n} {s}" for s, n in counts.items())
        )
        for row, m in enumerate(self.comparison.metrics):
            delta = "N/A" if m.delta is None else f"{m.delta:+.3f}"
            for col, text in enumerate((format_value(m.a), format_value(m.b), delta)):
                self.compare_metrics.setItem(row, col, QTableWidgetItem(text))
        self._fill_comparison()
        self.tabs.setCurrentIndex(1)
        return self.comparison

    def _fill_comparison(self) -> None:
        self.compare_table.setRowCount(0)
        if self.comparison is None:
            return
        wanted = self.filter_box.currentData()
        rows = [d for d in self.comparison.images if wanted is None or d.status == wanted]
        self.compare_table.setRowCount(len(rows))
        colours = {"fixed": "#2ca02c", "better": "#2ca02c", "broken": "#d62728", "worse": "#d62728"}
        for r, d in enumerate(rows):
            for c, v in enumerate(
                (
                    display_name(d.file_name) if d.file_name else str(d.image_id),
                    d.status,
                    d.counts_a.errors,
                    d.counts_b.errors,
                    f"{d.delta:+d}",
                )
            ):
                item = QTableWidgetItem(str(v))
                if c == 0:
                    item.setData(Qt.ItemDataRole.UserRole, d.image_id)
                if c == 1 and d.status in colours:
                    item.setForeground(QColor(colours[d.status]))
                self.compare_table.setItem(r, c, item)

    def _compare_selected(self) -> None:
        rows = self.compare_table.selectionModel().selectedRows()
        if rows and self.comparison is not None:
            image_id = int(self.compare_table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))
            # Show model B's outcome: that is what changed.
            self.activate(image_id, self._other.get(self.comparison.iou_type))
