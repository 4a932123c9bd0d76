"""Evaluation: one confusion matrix, per-image scores and the `gcnseg test` report."""
