"""fusereview.evaluation."""
