"""fusereview.models."""
