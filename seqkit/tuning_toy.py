"""A tiny synthetic task for testing and benchmarking the tuner without real data.

Sequences of 6 token ids (vocabulary 10); the label says whether token 1
occurs more often than token 2. Data is generated in memory from a fixed
NumPy generator, so ``prepare`` never touches files.

``python -m seqkit.tuning_toy tune toy [tune options]`` runs ``seqkit tune`` on
it (used by the resume and distributed tests and by ``bench/tuning.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

from seqkit.config import RecurrentConfig, resolve_config
from seqkit.data.pipeline import finish_pipeline
from seqkit.errors import SeqkitError
from seqkit.task import DataArgs, Prepared, Task


@dataclasses.dataclass
class ToyConfig(RecurrentConfig):
    cell: Literal["simple", "gru", "lstm"] = "gru"
    units: list[int] = dataclasses.field(default_factory=lambda: [4])
    embedding_dim: int = 4
    n_train: int = 48
    n_valid: int = 16
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 0.01
    jit_compile: bool = False
    implementation: Literal["auto", "fast", "keras"] = "keras"
    run_eagerly: bool = True


class ToyTask(Task):
    name = "toy"
    config_cls = ToyConfig
    objective = "val_loss"
    direction = "min"
    vocab = 10
    length = 6

    def _arrays(self, n: int, offset: int):
        import numpy as np

        rng = np.random.default_rng(1000 + offset)  # local generator: the global random state is untouched
        x = rng.integers(1, self.vocab, size=(n, self.length)).astype("int32")
        y = ((x == 1).sum(1) > (x == 2).sum(1)).astype("float32")[:, None]
        return x, y

    def prepare(self, cfg, data: DataArgs, for_tuning: bool = False) -> Prepared:
        import tensorflow as tf

        xt, yt = self._arrays(cfg.n_train, 0)
        xv, yv = self._arrays(cfg.n_valid, 1)
        train = tf.data.Dataset.from_tensor_slices((xt, yt)).shuffle(len(xt), seed=cfg.seed).batch(cfg.batch_size)
        train = finish_pipeline(train)
        valid = finish_pipeline(tf.data.Dataset.from_tensor_slices((xv, yv)).batch(cfg.batch_size))
        test = None
        if not for_tuning:
            xs, ys = self._arrays(cfg.n_valid, 2)
            test = tf.data.Dataset.from_tensor_slices((xs, ys)).batch(cfg.batch_size)
        return Prepared(train=train, valid=valid, test=test, info={"vocab_size": self.vocab})

    def build_model(self, cfg, info: dict[str, Any]):
        import keras

        from seqkit.layers import classification_head, recurrent_stack_from_config, token_embedding

        inputs = keras.Input((None,), dtype="int32", name="tokens")
        x = token_embedding(info["vocab_size"], cfg.embedding_dim)(inputs)
        x = recurrent_stack_from_config(cfg, return_sequences=False)(x)
        outputs = classification_head(x, 2)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate, clipnorm=cfg.clipnorm),
            loss="binary_crossentropy",
            metrics=["accuracy"],
            jit_compile=cfg.jit_compile,
            # A model this small trains faster op by op than after tracing a graph.
            run_eagerly=cfg.run_eagerly,
        )
        return model

    def fit(self, model, cfg, prepared: Prepared, callbacks: list, epochs: int, initial_epoch: int = 0):
        return model.fit(
            prepared.train,
            validation_data=prepared.valid,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=0,
        )

    def evaluate(self, model, cfg, prepared: Prepared, run_dir: Path | None) -> dict[str, Any]:
        loss, acc = model.evaluate(prepared.test, verbose=0)
        return {"test_loss": float(loss), "test_accuracy": float(acc)}

    def fixture(self, directory: Path) -> tuple[DataArgs, dict[str, Any]]:
        return DataArgs(), {}


TASK = ToyTask()


def main(argv: list[str] | None = None) -> int:
    """``tune toy [options]``: the ``seqkit tune`` command line, for the toy task."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m seqkit.tuning_toy")
    p.add_argument("command", choices=("tune",))
    p.add_argument("task", choices=("toy",))
    p.add_argument("--config")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--seed", type=int)
    p.add_argument("--tuner", default="random")
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--space")
    p.add_argument("--out", required=True)
    p.add_argument("--project", default="search")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--minutes", type=float)
    for name in ("--data", "--train", "--valid", "--test"):
        p.add_argument(name)
    args = p.parse_args(argv)
    from seqkit.tuning import tune

    try:
        cfg = resolve_config(ToyConfig, args.config, args.overrides, {"seed": args.seed} if args.seed else None)
        summary = tune(
            TASK,
            cfg,
            DataArgs(),
            out=args.out,
            tuner=args.tuner,
            trials=args.trials,
            max_epochs=args.max_epochs,
            space_file=args.space,
            project=args.project,
            overwrite=args.overwrite,
            minutes=args.minutes,
        )
    except SeqkitError as e:
        print(f"seqkit: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
