"""Task modules: sentiment, ner, forecast, charlm. Each exposes ``TASK`` (a :class:`seqkit.task.Task`)."""
