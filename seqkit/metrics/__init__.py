"""Evaluation metrics (entity-level NER scores, ...)."""
