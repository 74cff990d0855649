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
    from seqkit.data.pipeline import EpochRandom

    return window_dataset(values, np.arange(48, 180), 48, 12, [0, 1, 2], [0, 1, 2], 16, order=EpochRandom(0))


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


def test_epoch_random_depends_on_seed_and_epoch_only():
    from seqkit.data.pipeline import EpochRandom

    def perm(order):
        return order.generator().permutation(20)

    driven, fresh = EpochRandom(3), EpochRandom(3)
    driven.callback()  # a training loop names the epoch
    for epoch in range(3):
        driven.epoch = epoch
        first = perm(driven)
    fresh.callback()
    fresh.epoch = 2  # a run resumed at epoch 2: no earlier epoch drawn
    np.testing.assert_array_equal(perm(fresh), first)
    np.testing.assert_array_equal(perm(fresh), first)  # the same epoch again: the same draws
    assert not np.array_equal(perm(EpochRandom(4)), perm(EpochRandom(3)))
    counting = EpochRandom(3)  # iterated by hand: every pass is the next epoch
    assert not np.array_equal(perm(counting), perm(counting))


def test_window_order_of_an_epoch_is_the_same_after_a_restart():
    from seqkit.data.pipeline import EpochRandom
    from seqkit.forecasting.windows import window_dataset

    values = np.arange(400, dtype="float32").reshape(200, 2)

    def epoch_batches(order, epoch):
        order.epoch = epoch
        return np.concatenate(
            [x[:, -1, 0].numpy() for x, _ in window_dataset(values, np.arange(8, 190), 8, 4, [0, 1], [0], 16, order)]
        )

    long_run, restarted = EpochRandom(5), EpochRandom(5)
    long_run.callback()
    restarted.callback()
    seen = [epoch_batches(long_run, e) for e in range(3)]
    assert not np.array_equal(seen[1], seen[2])
    np.testing.assert_array_equal(epoch_batches(restarted, 2), seen[2])
    assert sorted(seen[2]) == sorted(values[np.arange(7, 189), 0])  # every window once
