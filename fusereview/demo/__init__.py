"""fusereview.demo."""
