"""Training (and inference) throughput of seqkit's recurrent layers vs keras.layers vs PyTorch.

Every figure is tokens per second on the same machine in the same run. Each measurement
runs in its own subprocess so TensorFlow's and PyTorch's thread pools never compete, and
is a short warm-up (compilation) followed by about ``--seconds`` of timed steps.

Columns:
    seqkit      ``recurrent_stack(..., implementation="auto")`` (the default), graph mode
    seqkit_xla  the same, ``jit_compile=True``
    keras       ``implementation="keras"`` (plain ``keras.layers``), graph mode
    keras_xla   the same, ``jit_compile=True``
    torch       ``torch.nn.LSTM``/``GRU`` with the same shapes (skipped if torch is missing)

Run: ``flock /tmp/seqkit-cpu.lock .venv/bin/python -m bench.speed``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from bench.common import md_table, write_result

VOCAB, EMBED, BATCH, STEPS = 65, 64, 64, 100


@dataclass(frozen=True)
class SpeedConfig:
    """One model shape: Embedding(65, 64) -> recurrent stack -> Dense(65), batch 64 x 100 steps, Adam."""

    name: str
    cell: str = "lstm"
    units: tuple[int, ...] = (256,)
    bidirectional: bool = False
    padded: bool = False  # lengths drawn from [STEPS / 2, STEPS], right-padded, loss masked


CONFIGS = [
    SpeedConfig("lstm256_charlm"),
    SpeedConfig("gru256", cell="gru"),
    SpeedConfig("bilstm256", bidirectional=True),
    SpeedConfig("lstm256x2_stacked", units=(256, 256)),
    SpeedConfig("lstm256_padded", padded=True),
]
IMPLS = ["seqkit", "seqkit_xla", "keras", "keras_xla", "torch"]


def _batch(cfg: SpeedConfig, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (BATCH, STEPS)).astype("int64")
    y = rng.integers(1, VOCAB, (BATCH, STEPS)).astype("int64")
    lengths = np.full(BATCH, STEPS)
    if cfg.padded:
        lengths = rng.integers(STEPS // 2, STEPS + 1, BATCH)
        for i, n in enumerate(lengths):
            x[i, n:] = 0
    return x, y, lengths


def _timed(step, seconds: float) -> tuple[float, float]:
    """Run ``step(n)`` (n training steps) for about ``seconds``; returns (steps/s, warm-up seconds)."""
    t0 = time.perf_counter()
    step(2)  # trace / compile
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    step(2)
    per = (time.perf_counter() - t0) / 2
    n = max(3, int(seconds / max(per, 1e-6)))
    t0 = time.perf_counter()
    step(n)
    return n / (time.perf_counter() - t0), warm


def _keras_worker(cfg: SpeedConfig, impl: str, seconds: float) -> dict:
    import keras
    import tensorflow as tf

    from seqkit.layers.recurrent import recurrent_stack
    from seqkit.seed import set_seed

    # Op determinism makes Keras drop jit_compile=True, so it stays off here.
    set_seed(0, deterministic=False)
    jit = impl.endswith("_xla")
    inp = keras.Input((STEPS,), dtype="int32")
    h = keras.layers.Embedding(VOCAB, EMBED, mask_zero=cfg.padded)(inp)
    h = recurrent_stack(
        cfg.cell,
        list(cfg.units),
        bidirectional=cfg.bidirectional,
        return_sequences=True,
        implementation="keras" if impl.startswith("keras") else "auto",
    )(h)
    model = keras.Model(inp, keras.layers.Dense(VOCAB)(h))
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit
    )
    assert model.jit_compile == jit
    rnn_types = sorted(
        {
            type(layer).__name__
            for layer in model._flatten_layers()
            if "LSTM" in type(layer).__name__ or "GRU" in type(layer).__name__
        }
    )
    x, y, _ = _batch(cfg)
    ds = tf.data.Dataset.from_tensors((x.astype("int32"), y.astype("int32"))).repeat().prefetch(2)

    def train(n):
        model.fit(ds, steps_per_epoch=n, epochs=1, verbose=0)

    steps_s, warm = _timed(train, seconds)
    fwd = tf.function(lambda t: model(t, training=False), jit_compile=jit)
    xt = tf.constant(x.astype("int32"))

    def infer(n):
        for _ in range(n):
            fwd(xt).numpy()

    infer_s, _ = _timed(infer, seconds / 2)
    return {
        "train_tokens_s": steps_s * BATCH * STEPS,
        "infer_tokens_s": infer_s * BATCH * STEPS,
        "warmup_s": warm,
        "layers": rnn_types,
    }


def _torch_worker(cfg: SpeedConfig, seconds: float) -> dict:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]
    units = cfg.units[0]
    assert all(u == units for u in cfg.units)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED, padding_idx=0)
            self.rnn = rnn_cls(
                EMBED, units, num_layers=len(cfg.units), batch_first=True, bidirectional=cfg.bidirectional
            )
            self.out = torch.nn.Linear(units * (2 if cfg.bidirectional else 1), VOCAB)

        def forward(self, x, lengths):
            h = self.embed(x)
            if cfg.padded:
                packed = torch.nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
                h, _ = torch.nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=STEPS)
            else:
                h = self.rnn(h)[0]
            return self.out(h)

    x, y, lengths = _batch(cfg)
    xt, yt, lt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(lengths)
    if cfg.padded:
        yt = yt.masked_fill(xt == 0, -100)  # ignored by cross_entropy, like Keras' masked loss
    model = Model()
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def train(n):
        for _ in range(n):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(xt, lt).reshape(-1, VOCAB), yt.reshape(-1), ignore_index=-100
            )
            loss.backward()
            opt.step()

    steps_s, warm = _timed(train, seconds)

    def infer(n):
        with torch.inference_mode():
            for _ in range(n):
                model(xt, lt)

    infer_s, _ = _timed(infer, seconds / 2)
    return {
        "train_tokens_s": steps_s * BATCH * STEPS,
        "infer_tokens_s": infer_s * BATCH * STEPS,
        "warmup_s": warm,
        "layers": [rnn_cls.__name__],
    }


def _worker(spec: str) -> None:
    job = json.loads(spec)
    cfg = SpeedConfig(**{**job["config"], "units": tuple(job["config"]["units"])})
    if job["impl"] == "torch":
        out = _torch_worker(cfg, job["seconds"])
    else:
        out = _keras_worker(cfg, job["impl"], job["seconds"])
    print("RESULT " + json.dumps(out), flush=True)


def _measure(cfg: SpeedConfig, impl: str, seconds: float) -> dict | None:
    spec = json.dumps({"config": asdict(cfg), "impl": impl, "seconds": seconds})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--worker", spec], capture_output=True, text=True, env=env, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    print(f"{cfg.name}/{impl} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per training measurement")
    p.add_argument("--configs", nargs="*", default=[c.name for c in CONFIGS], choices=[c.name for c in CONFIGS])
    p.add_argument("--impls", nargs="*", default=IMPLS, choices=IMPLS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return {}
    impls = list(args.impls)
    notes = []
    if "torch" in impls and not _torch_available():
        impls.remove("torch")
        notes.append("torch is not installed (pip install -r requirements-bench.txt): PyTorch columns skipped.")
    rows, raw = [], {}
    for cfg in (c for c in CONFIGS if c.name in args.configs):
        res = {}
        for impl in impls:
            res[impl] = _measure(cfg, impl, args.seconds)
            got = res[impl]
            print(
                f"{cfg.name:20s} {impl:11s} " + (f"{got['train_tokens_s']:9.0f} tok/s" if got else "failed"), flush=True
            )
        raw[cfg.name] = {"config": asdict(cfg), "results": res}
        row = {"config": cfg.name}
        for impl in impls:
            row[impl] = res[impl]["train_tokens_s"] if res[impl] else None
        base = res.get("torch")
        for impl in ("seqkit", "seqkit_xla", "keras", "keras_xla"):
            if impl in impls and res[impl] and base:
                row[f"{impl}/torch"] = res[impl]["train_tokens_s"] / base["train_tokens_s"]
        if res.get("seqkit") and res.get("keras"):
            row["seqkit/keras"] = res["seqkit"]["train_tokens_s"] / res["keras"]["train_tokens_s"]
        rows.append(row)
    infer_rows = []
    for name, item in raw.items():
        row = {"config": name}
        for impl, got in item["results"].items():
            row[impl] = got["infer_tokens_s"] if got else None
        infer_rows.append(row)
    md = [
        "# Recurrent training speed (tokens/s, higher is better)\n",
        f"Embedding({VOCAB}, {EMBED}) -> recurrent stack -> Dense({VOCAB}), batch {BATCH} x {STEPS} steps, Adam; "
        f"{os.cpu_count()} CPU cores; about {args.seconds:g} s timed per cell after a warm-up.\n",
        md_table(rows),
        "\n## Inference (forward pass of the same batch, tokens/s)\n",
        md_table(infer_rows),
    ]
    if notes:
        md.append("\n" + "\n".join(notes) + "\n")
    write_result("speed", {"train": rows, "inference": infer_rows, "raw": raw, "notes": notes}, "\n".join(md))
    print("\n".join(md))
    return {"train": rows, "inference": infer_rows}


if __name__ == "__main__":
    main()
