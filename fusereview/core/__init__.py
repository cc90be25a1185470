"""The Qt-free, torch-free core: COCO data, geometry, images, the project database, review sessions.

Nothing in this package may import PySide6, pyqtgraph or torch (a test checks it in a fresh
interpreter): a GPU server runs the same code headless.
"""
