"""Every training pipeline ends with a fixed prefetch and autotuning off (seqkit/data/pipeline.py)."""

from __future__ import annotations

import numpy as np
import pytest

from seqkit.config import from_dict


def _tbptt():
    from seqkit.data.corpus import tbptt_dataset

    return tbptt_dataset(np.arange(1000) % 7, batch_size=4, seq_len=8)


def _windows():
    from seqkit.forecasting.windows import window_dataset

    values = np.random.default_rng(0).normal(size=(200, 3)).astype("float32")
    return window_dataset(values, np.arange(48, 180), 48, 12, [0, 1, 2], [0, 1, 2], batch_size=16, shuffle=True, seed=0)


def _task(name):
    def build(tmp_path):
        from seqkit.task import DataArgs, get_task
        from seqkit.tuning_toy import TASK, ToyConfig

        if name == "toy":
            return TASK.prepare(ToyConfig(), DataArgs()).train
        task = get_task(name)
        data, overrides = task.fixture(tmp_path / "data")
        return task.prepare(from_dict(task.config_cls, overrides, source="fixture"), data).train

    return build


@pytest.mark.parametrize("name", ["tbptt", "windows", "ner", "sentiment", "toy"])
def test_pipelines_do_not_autotune(tmp_path, name):
    # Deleting an autotuned iterator waits for its model thread: up to 45 s at every epoch's end.
    make = {"tbptt": lambda _: _tbptt(), "windows": lambda _: _windows()}.get(name) or _task(name)
    ds = make(tmp_path)
    assert ds.options().autotune.enabled is False
    assert next(iter(ds)) is not None
