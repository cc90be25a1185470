"""fusereview.training."""
