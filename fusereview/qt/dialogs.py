"""The window's small dialogs: the shortcut sheet, About (with versions), Preferences.

None of them is modal: a modal box would freeze a screenshot or a test run, and a reviewer may
keep the shortcut sheet open beside the canvas.
"""

from __future__ import annotations

import platform
from importlib import metadata

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

#: (keys, what they do to what): the ? sheet and the README list these.
SHORTCUTS: list[tuple[str, str]] = [
    (
        "A",
        "accept the selected prediction as shown (one that matches a label: record agreement, no second label)",
    ),
    ("R", "reject the selected prediction (never deletes a label)"),
    ("Delete", "delete the selected annotation (undoable); on a prediction: reject it"),
    ("T", "take the selected prediction's box and mask for the label it matches"),
    ("O", "make the selected item box only (drop its mask)"),
    ("Space / N", "next pending prediction (queue order)"),
    ("P", "previous pending prediction"),
    ("Tab", "next item on the same image"),
    ("PgDown / PgUp", "next / previous image"),
    ("1 – 9", "set the category of the selected prediction or annotation (and of objects drawn next)"),
    ("E", "edit: cycle select/handles → brush → eraser"),
    ("V / B / X", "select / brush / eraser"),
    ("D / G / S", "draw a box / draw a polygon / SAM3 refine (draw a box prompt)"),
    (
        "C",
        "click to segment (SAM3's interactive head): left click object, right click background, "
        "Enter accepts (on a selected item: its new mask), Esc discards",
    ),
    ("[ / ]", "brush smaller / larger"),
    ("Shift+A / Shift+R", "accept all above / reject all below the threshold on this image"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
    ("Ctrl+1 / 2 / 3", "Review / Train / Evaluate workspace"),
    ("Ctrl+O", "open a dataset or project"),
    ("Ctrl+S / Ctrl+Shift+S", "export COCO / export as…"),
    ("F / Ctrl+0", "fit the image / actual size"),
    ("wheel, space-drag, middle-drag", "zoom to cursor, pan"),
    ("? / Esc", "show / hide this sheet"),
]


def _with_label_issue_keys() -> None:
    # the label-issues mode's keys (issue 14), before the sheet's own line
    from fusereview.qt.label_issues import LABEL_ISSUE_SHORTCUTS

    SHORTCUTS[-1:-1] = LABEL_ISSUE_SHORTCUTS


_with_label_issue_keys()


class ShortcutSheet(QDialog):
    """Every shortcut in one window; ? shows and hides it, Esc hides it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.setModal(False)
        lay = QVBoxLayout(self)
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in SHORTCUTS)
        self.label = QLabel(f"<table>{rows}</table>")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.label)
        # ? inside the sheet hides it again (Esc does by QDialog's own reject)
        QShortcut(QKeySequence("?"), self, activated=self.hide)

    def toggle(self) -> None:
        """Show it when hidden, hide it when shown."""
        if self.isVisible():
            self.hide()
        else:
            self.show()
            self.raise_()


def versions() -> dict[str, str]:
    """Versions of fusereview and what it runs on, read from the installed metadata (no imports)."""
    out = {"python": platform.python_version()}
    for dist in ("fusereview", "PySide6-Essentials", "torch", "transformers", "pycocotools", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        from PySide6.QtCore import qVersion

        out["Qt"] = qVersion()
    except ImportError:  # pragma: no cover - PySide6 is what runs this dialog
        pass
    return out


class AboutDialog(QDialog):
    """What this is, and the versions a bug report needs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("about_dialog")
        self.setWindowTitle("About fusereview")
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                "<b>fusereview</b><br>Review SAM3 predictions into trustworthy COCO labels, retrain, evaluate."
            )
        )
        form = QFormLayout()
        self.version_labels = {}
        for name, version in versions().items():
            label = QLabel(version)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.version_labels[name] = label
            form.addRow(name, label)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)


#: Preferences stored in the application's QSettings.
PREFERENCES = {
    "review/reviewer": ("Reviewer name", "recorded with every decision", ""),
    "review/predict_threshold": ("Prediction threshold", "detections scoring below are not stored", 0.3),
}


def preference(settings: QSettings, key: str) -> object:
    """A preference's value (its default when never set)."""
    default = PREFERENCES[key][2]
    value = settings.value(key, default)
    if isinstance(default, float):
        try:
            return float(value)  # QSettings' ini files hand numbers back as strings
        except (TypeError, ValueError):
            return default
    return value


class PreferencesDialog(QDialog):
    """The reviewer's name and the prediction threshold (stored in the application's settings)."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preferences_dialog")
        self.setWindowTitle("Preferences")
        self.settings = settings
        form = QFormLayout(self)
        self.reviewer = QLineEdit(str(preference(settings, "review/reviewer") or ""))
        self.reviewer.setPlaceholderText("your login name is used when empty")
        self.reviewer.setToolTip(PREFERENCES["review/reviewer"][1])
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(float(preference(settings, "review/predict_threshold")))  # type: ignore[arg-type]
        self.threshold.setToolTip(PREFERENCES["review/predict_threshold"][1])
        form.addRow(PREFERENCES["review/reviewer"][0], self.reviewer)
        form.addRow(PREFERENCES["review/predict_threshold"][0], self.threshold)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def save(self) -> None:
        """Store the values and close."""
        self.settings.setValue("review/reviewer", self.reviewer.text().strip())
        self.settings.setValue("review/predict_threshold", round(self.threshold.value(), 2))
        self.settings.sync()
        self.accept()
