"""Window arithmetic: which origins a split owns, and the (context, target) arrays they make.

Origin ``t`` is the index of the first forecast step: its input is
``values[t - L : t]`` and its target ``values[t : t + H]``. A split owns the
origins whose *targets* lie inside it; the context may reach back before the
split's start (the Informer / Autoformer / DLinear / PatchTST convention).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seqkit.data.pipeline import EpochRandom

# Row borders of the ETTh1 benchmark split: 12 months train, 4 validation, 4 test (hourly rows).
ETT_BORDERS = (0, 8640, 11520, 14400)


@dataclasses.dataclass(frozen=True)
class Split:
    """Row ranges ``[start, end)`` of the train, validation and test parts of one series."""

    train: tuple[int, int]
    valid: tuple[int, int]
    test: tuple[int, int]


def ett_split() -> Split:
    b = ETT_BORDERS
    return Split((b[0], b[1]), (b[1], b[2]), (b[2], b[3]))


def fraction_split(n: int, valid_fraction: float, test_fraction: float, horizon: int = 0, min_train: int = 0) -> Split:
    """Chronological split of ``n`` rows: train first, then validation, then the last ``test_fraction``.

    With ``horizon``, a part that its fraction makes shorter than one horizon gets one whole
    horizon instead (so it holds at least one window), and when training would keep fewer than
    ``min_train`` rows (``input_length + horizon``: one training window) the validation and then
    the test part give back rows down to one horizon each (Darts / statsforecast hold out whole
    horizons the same way). Raises ``ValueError`` naming the minimum length when even that fails.
    """
    n_test = int(round(n * test_fraction))
    n_valid = int(round(n * valid_fraction))
    if horizon:
        n_test, n_valid = max(n_test, horizon), max(n_valid, horizon)
        short = min_train - (n - n_test - n_valid)
        # Validation gives back first: it only picks the epoch, while the test part is what is reported.
        give = min(max(short, 0), n_valid - horizon)
        n_valid, short = n_valid - give, short - give
        give = min(max(short, 0), n_test - horizon)
        n_test, short = n_test - give, short - give
        if short > 0:
            need = min_train + 2 * horizon
            raise ValueError(
                f"series has {n} rows, fewer than the {need} needed for one training window "
                f"(input_length + horizon = {min_train}) plus one validation and one test horizon ({horizon} each)"
            )
    train_end = n - n_test - n_valid
    return Split((0, train_end), (train_end, n - n_test), (n - n_test, n))


def window_origins(start: int, end: int, horizon: int, stride: int = 1, input_length: int = 0) -> np.ndarray:
    """Origins ``t`` with ``t >= max(start, input_length)`` and ``t + horizon <= end``, every ``stride`` steps."""
    first = max(int(start), int(input_length))
    last = int(end) - int(horizon)  # inclusive
    if last < first:
        return np.zeros((0,), dtype=np.int64)
    return np.arange(first, last + 1, max(int(stride), 1), dtype=np.int64)


def make_windows(
    values: np.ndarray, origins: np.ndarray, input_length: int, horizon: int, in_cols=None, out_cols=None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N, L, in)`` contexts and ``(N, H, out)`` targets (``None`` when a target would run past the end)."""
    v = np.asarray(values)
    o = np.asarray(origins, dtype=np.int64)
    in_cols = slice(None) if in_cols is None else in_cols
    out_cols = slice(None) if out_cols is None else out_cols
    x = v[o[:, None] + np.arange(-input_length, 0)[None, :]][:, :, in_cols]
    if len(o) and o.max() + horizon > len(v):
        return x, None
    y = v[o[:, None] + np.arange(horizon)[None, :]][:, :, out_cols]
    return x, y


def window_dataset(
    values: np.ndarray,
    origins: np.ndarray,
    input_length: int,
    horizon: int,
    in_cols: list[int],
    out_cols: list[int],
    batch_size: int,
    order: EpochRandom | None = None,
):
    """A ``tf.data.Dataset`` of ``((B, L, in), (B, H, out))`` batches gathered on the fly (no copies of windows).

    With ``order`` the origins are shuffled every epoch by ``order.generator()``, so epoch ``e``'s
    batches depend on the seed and ``e`` only (a resumed run sees the same ones); without, they
    come in time order.
    """
    import tensorflow as tf

    from seqkit.data.pipeline import MAP_PARALLELISM, finish_pipeline

    origins = np.asarray(origins, np.int64)
    v = tf.constant(np.asarray(values, np.float32))
    v_in = tf.gather(v, in_cols, axis=1)
    v_out = tf.gather(v, out_cols, axis=1)
    back = tf.range(-input_length, 0, dtype=tf.int64)
    ahead = tf.range(horizon, dtype=tf.int64)
    if order is None:
        ds = tf.data.Dataset.from_tensor_slices(origins)
    else:

        def epoch_origins():
            yield order.generator().permutation(origins)  # one array per epoch: no Python per window

        ds = tf.data.Dataset.from_generator(epoch_origins, output_signature=tf.TensorSpec(origins.shape, tf.int64))
        ds = ds.unbatch()
    ds = ds.batch(batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(origins) // batch_size)))

    def gather(t):
        x = tf.gather(v_in, t[:, None] + back[None, :])
        y = tf.gather(v_out, t[:, None] + ahead[None, :])
        return x, y

    return finish_pipeline(ds.map(gather, num_parallel_calls=MAP_PARALLELISM, deterministic=True))
