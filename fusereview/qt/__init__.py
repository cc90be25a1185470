"""fusereview.qt."""
