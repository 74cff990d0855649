"""Training (and inference) throughput of seqkit's recurrent layers vs keras.layers vs PyTorch.

Every figure is tokens per second on the same machine in the same run. Each measurement
runs in its own subprocess so TensorFlow's and PyTorch's thread pools never compete, and
is a short warm-up (compilation) followed by about ``--seconds`` of timed steps.

Columns:
    seqkit      ``recurrent_stack(..., implementation="auto")`` (the default), graph mode
    seqkit_xla  the same, ``jit_compile=True``
    seqkit_tfloop  seqkit's layers with ``SEQKIT_FAST_LOOP_JIT=0`` (the loops run as plain
                TensorFlow ops instead of their own XLA clusters), graph mode: the XLA lever
    seqkit_bf16grad  seqkit with ``SEQKIT_FAST_BF16_GRADS=1`` (opt-in: the LSTM's weight and input
                gradients as bfloat16 matmuls), graph mode
    keras       ``implementation="keras"`` (plain ``keras.layers``), graph mode
    keras_xla   the same, ``jit_compile=True``
    torch       ``torch.nn.LSTM``/``GRU`` with the same shapes (skipped if torch is missing)

Both sides do the same work: the padded config runs the LSTM over the whole padded tensor on
both sides with the loss masked at the padding (no ``pack_padded_sequence``: a right-padded
one-directional LSTM with a masked loss does not need it), and the ``charlm_task`` config is
the char-LM task's own model and training step (``tasks/charlm.py``) against its PyTorch twin.

Run: ``python -m bench.speed``
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
    """One model: Embedding(65, 64) -> recurrent stack -> Dense(65), batch x steps tokens, Adam."""

    name: str
    cell: str = "lstm"
    units: tuple[int, ...] = (256,)
    bidirectional: bool = False
    padded: bool = False  # lengths drawn from [steps / 2, steps], right-padded, loss masked
    batch: int = BATCH
    steps: int = STEPS
    # The char-LM task's default model and train step (dropout, Adam at its rate, global-norm
    # clipping, state carried across batches) instead of the plain model above.
    charlm_task: bool = False


CONFIGS = [
    SpeedConfig("lstm256"),
    SpeedConfig("gru256", cell="gru"),
    SpeedConfig("bilstm256", bidirectional=True),
    SpeedConfig("lstm256x2_stacked", units=(256, 256)),
    SpeedConfig("lstm256_padded", padded=True),
    # tasks/charlm.py CharLMConfig's defaults; _charlm_task_config checks they still agree.
    SpeedConfig("charlm_task", units=(256, 256), batch=32, steps=64, charlm_task=True),
]
IMPLS = ["seqkit", "seqkit_xla", "seqkit_tfloop", "seqkit_bf16grad", "keras", "keras_xla", "torch"]


def _batch(cfg: SpeedConfig, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (cfg.batch, cfg.steps)).astype("int64")
    y = rng.integers(1, VOCAB, (cfg.batch, cfg.steps)).astype("int64")
    if cfg.padded:
        for i, n in enumerate(rng.integers(cfg.steps // 2, cfg.steps + 1, cfg.batch)):
            x[i, n:] = 0
    return x, y


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


def _charlm_task_config(cfg: SpeedConfig, implementation: str = "auto", jit_compile: bool = False):
    """The char-LM task's default config; fails if ``cfg`` no longer describes its model."""
    from tasks.charlm import CharLMConfig

    task = CharLMConfig(implementation=implementation, jit_compile=jit_compile)
    got = (task.cell, tuple(task.units), task.embedding_dim, task.batch_size, task.seq_len)
    want = (cfg.cell, cfg.units, EMBED, cfg.batch, cfg.steps)
    if got != want:
        raise SystemExit(f"{cfg.name} describes {want}, but tasks/charlm.py's defaults are {got}: update CONFIGS")
    return task


def _keras_worker(cfg: SpeedConfig, impl: str, seconds: float) -> dict:
    import keras
    import tensorflow as tf

    from seqkit.data.pipeline import finish_pipeline
    from seqkit.layers.recurrent import recurrent_stack
    from seqkit.seed import set_seed

    # Op determinism makes Keras drop jit_compile=True, so it stays off here.
    set_seed(0, deterministic=False)
    jit = impl.endswith("_xla")
    implementation = "keras" if impl.startswith("keras") else "auto"
    x, y = _batch(cfg)
    if cfg.charlm_task:
        from seqkit.tbptt import TBPTTTrainer
        from tasks.charlm import build_char_model

        model = build_char_model(_charlm_task_config(cfg, implementation, jit), VOCAB)
        trainer = TBPTTTrainer(model, jit_compile=jit)
        xs, ys = tf.constant(x.astype("int32")), tf.constant(y.astype("int32"))
        states = [trainer.zero_state(cfg.batch)]

        def train(n):
            # The task's loop: each step starts from the state the previous one ended in.
            for _ in range(n):
                loss, states[0] = trainer.train_step(xs, ys, states[0])
            float(loss)

    else:
        inp = keras.Input((cfg.steps,), dtype="int32")
        h = keras.layers.Embedding(VOCAB, EMBED, mask_zero=cfg.padded)(inp)
        h = recurrent_stack(
            cfg.cell,
            list(cfg.units),
            bidirectional=cfg.bidirectional,
            return_sequences=True,
            implementation=implementation,
        )(h)
        model = keras.Model(inp, keras.layers.Dense(VOCAB)(h))
        # With mask_zero the mask reaches the loss: padded positions count for nothing.
        model.compile(
            keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit
        )
        assert model.jit_compile == jit
        # The same pipeline ending the tasks use: with tf.data autotuning on, its model thread
        # competes with the training step for the core (about 30% slower steps on one pinned core).
        ds = finish_pipeline(tf.data.Dataset.from_tensors((x.astype("int32"), y.astype("int32"))).repeat())

        def train(n):
            model.fit(ds, steps_per_epoch=n, epochs=1, verbose=0)

    rnn_types = sorted(
        {
            type(layer).__name__
            for layer in model._flatten_layers()
            if "LSTM" in type(layer).__name__ or "GRU" in type(layer).__name__
        }
    )
    steps_s, warm = _timed(train, seconds)
    fwd = tf.function(lambda t: model(t, training=False), jit_compile=jit)
    xt = tf.constant(x.astype("int32"))

    def infer(n):
        for _ in range(n):
            fwd(xt).numpy()

    infer_s, _ = _timed(infer, seconds / 2)
    return {
        "train_tokens_s": steps_s * cfg.batch * cfg.steps,
        "infer_tokens_s": infer_s * cfg.batch * cfg.steps,
        "warmup_s": warm,
        "layers": rnn_types,
    }


def _torch_worker(cfg: SpeedConfig, seconds: float) -> dict:
    import torch

    torch.manual_seed(0)
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]
    units = cfg.units[0]
    assert all(u == units for u in cfg.units)
    task = _charlm_task_config(cfg) if cfg.charlm_task else None
    # torch.nn.LSTM's dropout acts between stacked layers, as the task's inter_dropout does.
    inter_dropout, output_dropout = (task.inter_dropout, task.output_dropout) if task else (0.0, 0.0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED)
            self.rnn = rnn_cls(
                EMBED,
                units,
                num_layers=len(cfg.units),
                batch_first=True,
                bidirectional=cfg.bidirectional,
                dropout=inter_dropout,
            )
            self.drop = torch.nn.Dropout(output_dropout)
            self.out = torch.nn.Linear(units * (2 if cfg.bidirectional else 1), VOCAB)

        def forward(self, x, state=None):
            # Padded batches too run over the whole padded tensor: right padding cannot reach
            # the valid steps of a one-directional RNN, and the loss ignores the padded ones.
            h, state = self.rnn(self.embed(x), state)
            return self.out(self.drop(h)), state

    x, y = _batch(cfg)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if cfg.padded:
        yt = yt.masked_fill(xt == 0, -100)  # ignored by cross_entropy, like Keras' masked loss
    model = Model()
    opt = torch.optim.Adam(model.parameters(), task.learning_rate if task else 1e-3)
    state = [None]

    def train(n):
        model.train()
        for _ in range(n):
            opt.zero_grad()
            logits, new_state = model(xt, state[0])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), yt.reshape(-1), ignore_index=-100)
            loss.backward()
            if task:
                # As the task trains: global-norm clipping, the state carried to the next batch.
                torch.nn.utils.clip_grad_norm_(model.parameters(), task.clipnorm)
                state[0] = tuple(s.detach() for s in new_state)
            opt.step()

    steps_s, warm = _timed(train, seconds)

    def infer(n):
        model.eval()
        with torch.inference_mode():
            for _ in range(n):
                model(xt)

    infer_s, _ = _timed(infer, seconds / 2)
    return {
        "train_tokens_s": steps_s * cfg.batch * cfg.steps,
        "infer_tokens_s": infer_s * cfg.batch * cfg.steps,
        "warmup_s": warm,
        "layers": [rnn_cls.__name__],
    }


# --- Levers: one LSTM(256) layer, forward + backward (input and weight gradients), batch 64 x 100 x 64 ---

LEVERS = [
    ("keras.layers.LSTM, graph", "keras", False),
    ("keras.layers.LSTM, XLA", "keras", True),
    ("tf.scan + one input matmul (autodiff), graph", "scan", False),
    ("tf.scan + one input matmul (autodiff), XLA", "scan", True),
    ("tf.raw_ops.BlockLSTMV2 (fused C++ op), graph", "block", False),
    ("seqkit loop as TF ops (SEQKIT_FAST_LOOP_JIT=0), graph", "seqkit_tfloop", False),
    ("seqkit (default: loops as XLA clusters), graph", "seqkit", False),
    ("seqkit, one loop over the whole batch (SEQKIT_FAST_SHARDS=1), graph", "seqkit_oneloop", False),
    ("seqkit in Keras' mixed_bfloat16 policy, graph", "seqkit_bf16", False),
    ("seqkit, weight and input gradients in bfloat16 (SEQKIT_FAST_BF16_GRADS=1), graph", "seqkit_bf16grad", False),
    ("seqkit, whole step under XLA", "seqkit", True),
    ("float32 matmul (64x256 @ 256x1024) x 100", "mm_float32", False),
    ("bfloat16 matmul (64x256 @ 256x1024) x 100", "mm_bfloat16", False),
    ("torch.nn.LSTM", "torch", False),
]


def _best_ms(fn, reps: int = 5, per: int = 3) -> float:
    fn()
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(per):
            fn()
        best = min(best, (time.perf_counter() - t0) / per)
    return best * 1e3


def _lever_worker(kind: str, jit: bool) -> dict:
    batch, steps, feat, units = BATCH, STEPS, EMBED, 256
    if kind == "torch":
        import torch

        layer = torch.nn.LSTM(feat, units, batch_first=True)
        x = torch.randn(batch, steps, feat, requires_grad=True)

        def step():
            # The weights' and the input's gradients, as the TensorFlow rows compute.
            layer.zero_grad()
            x.grad = None
            y = layer(x)[0]
            (y * y).sum().backward()

        return {"ms": _best_ms(step)}
    import keras
    import tensorflow as tf

    if kind.startswith("mm_"):
        dtype = kind[3:]
        a = tf.random.normal([steps, batch, units], dtype=tf.float32)
        w = tf.random.normal([units, 4 * units], dtype=tf.float32)

        @tf.function
        def chain(a, w):
            a, w = tf.cast(a, dtype), tf.cast(w, dtype)
            return tf.add_n([tf.matmul(a[t], w) for t in range(steps)])

        return {"ms": _best_ms(lambda: chain(a, w).numpy())}
    x = tf.random.normal([batch, steps, feat])
    if kind in ("keras", "seqkit", "seqkit_tfloop", "seqkit_oneloop", "seqkit_bf16", "seqkit_bf16grad"):
        from seqkit.layers.fast import FastLSTM

        dtype = "mixed_bfloat16" if kind == "seqkit_bf16" else None
        layer = (keras.layers.LSTM if kind == "keras" else FastLSTM)(units, return_sequences=True, dtype=dtype)
        layer.build((None, steps, feat))
        variables = layer.trainable_variables

        def forward(x, *_):
            # training=True: inference (training=False/None) runs the plain loop, not the fused one.
            return layer(x, training=True)

    else:
        k = tf.Variable(tf.random.normal([feat, 4 * units]) * 0.1)
        rk = tf.Variable(tf.random.normal([units, 4 * units]) * 0.05)
        b = tf.Variable(tf.zeros([4 * units]))
        variables = [k, rk, b]

        def forward(x, k, rk, b):
            h0 = tf.zeros([batch, units])
            xt = tf.transpose(x, [1, 0, 2])
            if kind == "block":
                zero = tf.zeros([units])
                out = tf.raw_ops.BlockLSTMV2(
                    seq_len_max=tf.cast(steps, tf.int64),
                    x=xt,
                    cs_prev=h0,
                    h_prev=h0,
                    w=tf.concat([k, rk], 0),
                    wci=zero,
                    wcf=zero,
                    wco=zero,
                    b=b,
                    cell_clip=0.0,
                    use_peephole=False,
                )
                return tf.transpose(out[-1], [1, 0, 2])
            xp = tf.einsum("tbd,dg->tbg", xt, k) + b

            def cell(carry, z):
                h, c = carry
                i, f, g, o = tf.split(z + tf.matmul(h, rk), 4, axis=-1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                return tf.sigmoid(o) * tf.tanh(c), c

            return tf.transpose(tf.scan(cell, xp, initializer=(h0, h0))[0], [1, 0, 2])

    @tf.function(jit_compile=jit)
    def step():
        # The input's gradient too, as torch.nn.LSTM's row computes it (a layer after an embedding
        # or another layer needs it): left out, the graph may prune that work from these rows only.
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(forward(x, *variables), tf.float32)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, *variables])

    return {"ms": _best_ms(lambda: [g.numpy() for g in step()])}


def _set_threads(torch_job: bool) -> None:
    # Each framework is only imported in its own workers: in one process their thread pools fight.
    n = int(os.environ.get("SEQKIT_BENCH_THREADS", os.cpu_count() or 1))
    if torch_job:
        import torch

        torch.set_num_threads(n)
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def _worker(spec: str) -> None:
    job = json.loads(spec)
    _set_threads("torch" in (job.get("impl"), job.get("lever")))
    if "lever" in job:
        print("RESULT " + json.dumps(_lever_worker(job["lever"], job["jit"])), flush=True)
        return
    cfg = SpeedConfig(**{**job["config"], "units": tuple(job["config"]["units"])})
    if job["impl"] == "torch":
        out = _torch_worker(cfg, job["seconds"])
    else:
        out = _keras_worker(cfg, job["impl"], job["seconds"])
    print("RESULT " + json.dumps(out), flush=True)


def _measure(cfg: SpeedConfig | None, impl: str, seconds: float, lever: dict | None = None) -> dict | None:
    if lever is not None:
        spec = json.dumps(lever)
    else:
        spec = json.dumps({"config": asdict(cfg), "impl": impl, "seconds": seconds})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if impl == "seqkit_tfloop":
        env["SEQKIT_FAST_LOOP_JIT"] = "0"
    if impl == "seqkit_oneloop":
        env["SEQKIT_FAST_SHARDS"] = "1"
    if impl == "seqkit_bf16grad":
        env["SEQKIT_FAST_BF16_GRADS"] = "1"
    # Other users' work on a shared machine shows in the load; kept with each measurement.
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--worker", spec], capture_output=True, text=True, env=env, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[len("RESULT ") :]), "load_1min": load}
    print(f"{cfg.name if cfg else lever}/{impl} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def _median(values: list[float]) -> float | None:
    """The median (the lower middle value for an even count), None for no values."""
    return sorted(values)[(len(values) - 1) // 2] if values else None


def _describe(cfg: SpeedConfig) -> str:
    layers = ("bidirectional " if cfg.bidirectional else "") + f"{cfg.cell.upper()}({cfg.units[0]})"
    if len(cfg.units) > 1:
        layers = f"{len(cfg.units)} x {layers}"
    text = f"{layers}, batch {cfg.batch} x {cfg.steps}"
    if cfg.padded:
        text += f", right-padded (lengths {cfg.steps // 2}-{cfg.steps}), masked loss"
    if cfg.charlm_task:
        text = f"char-LM task's model: {text}, dropout, Adam + global-norm clipping, state carried"
    return text


def _table_row(name: str, values: dict[str, float | None], tf_impls: list[str], impls: list[str]) -> dict:
    """Tokens/s of every implementation, then each TensorFlow one over PyTorch and seqkit over Keras."""
    row: dict = {"config": name, **{impl: values[impl] for impl in impls}}
    for impl in tf_impls:
        if values[impl] and values.get("torch"):
            row[f"{impl}/torch"] = values[impl] / values["torch"]
    if values.get("seqkit") and values.get("keras"):
        row["seqkit/keras"] = values["seqkit"] / values["keras"]
    return row


def _headline_row(cfg: SpeedConfig, train: dict, infer: dict, rounds: list[dict]) -> dict:
    paired = [
        g["seqkit"]["train_tokens_s"] / g["torch"]["train_tokens_s"] for g in rounds if g["seqkit"] and g["torch"]
    ]
    return {
        "config": cfg.name,
        "model": _describe(cfg),
        "train seqkit": train["seqkit"],
        "train torch": train["torch"],
        "train seqkit/torch": train["seqkit"] / train["torch"],
        "paired per round": " / ".join(f"{r:.2f}" for r in paired),
        "inference seqkit": infer["seqkit"],
        "inference torch": infer["torch"],
        "inference seqkit/torch": infer["seqkit"] / infer["torch"] if infer["seqkit"] and infer["torch"] else None,
    }


def _median_run(runs: list[dict]) -> dict | None:
    """The run with the median training throughput (the lower middle one for an even count)."""
    if not runs:
        return None
    return sorted(runs, key=lambda r: r["train_tokens_s"])[(len(runs) - 1) // 2]


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per training measurement")
    p.add_argument("--configs", nargs="*", default=[c.name for c in CONFIGS], choices=[c.name for c in CONFIGS])
    p.add_argument("--impls", nargs="*", default=IMPLS, choices=IMPLS)
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads for both frameworks (TF intra/inter-op pools, torch.set_num_threads); 1 is robust on a shared machine",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="rounds per config; each cell reports its median round (noise)"
    )
    p.add_argument("--no-levers", action="store_true", help="skip the per-layer lever measurements")
    p.add_argument("--out", default="speed", help="results file name under bench/results/ (keeps a partial run apart)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return {}
    os.environ["SEQKIT_BENCH_THREADS"] = str(args.threads)
    impls = list(args.impls)
    notes = []
    if "torch" in impls and not _torch_available():
        impls.remove("torch")
        notes.append("torch is not installed (pip install -r requirements-bench.txt): PyTorch columns skipped.")
    rows, infer_rows, headline, raw, loads = [], [], [], {}, []
    tf_impls = [i for i in impls if i != "torch"]
    for cfg in (c for c in CONFIGS if c.name in args.configs):
        rounds: list[dict[str, dict | None]] = []
        for r in range(args.repeats):
            # Each round starts with a different implementation, so a slow spell of the
            # machine does not always land on the same column.
            got_round: dict[str, dict | None] = {}
            for impl in impls[r % len(impls) :] + impls[: r % len(impls)]:
                got = got_round[impl] = _measure(cfg, impl, args.seconds)
                print(
                    f"{cfg.name:20s} {impl:14s} round {r + 1}: "
                    + (f"{got['train_tokens_s']:9.0f} tok/s" if got else "failed"),
                    flush=True,
                )
            rounds.append(got_round)
            loads += [g["load_1min"] for g in got_round.values() if g]
        runs = {impl: [g[impl] for g in rounds if g[impl]] for impl in impls}
        train = {impl: _median([g["train_tokens_s"] for g in got]) for impl, got in runs.items()}
        infer = {impl: _median([g["infer_tokens_s"] for g in got]) for impl, got in runs.items()}
        raw[cfg.name] = {
            "config": asdict(cfg),
            "results": {impl: _median_run(got) for impl, got in runs.items()},
            "train_tokens_s_rounds": {impl: [g["train_tokens_s"] for g in got] for impl, got in runs.items()},
            "infer_tokens_s_rounds": {impl: [g["infer_tokens_s"] for g in got] for impl, got in runs.items()},
            "load_1min_rounds": {impl: [g["load_1min"] for g in got] for impl, got in runs.items()},
        }
        rows.append(_table_row(cfg.name, train, tf_impls, impls))
        infer_rows.append(_table_row(cfg.name, infer, tf_impls, impls))
        if train.get("seqkit") and train.get("torch"):
            headline.append(_headline_row(cfg, train, infer, rounds))
    lever_rows = []
    for label, kind, jit in [] if args.no_levers else LEVERS:
        if kind == "torch" and "torch" not in impls:
            continue
        got = _measure(None, kind, 0.0, lever={"lever": kind, "jit": jit})
        lever_rows.append(
            {
                "variant": label,
                "fwd+bwd ms": got["ms"] if got else None,
                "load (1 min)": got["load_1min"] if got else None,
            }
        )
        print(f"{label:60s} " + (f"{got['ms']:8.1f} ms" if got else "failed"), flush=True)
    md = [
        "# Recurrent training speed (tokens/s, higher is better)\n",
        f"Embedding({VOCAB}, {EMBED}) -> recurrent stack -> Dense({VOCAB}), Adam, the batch of each config; "
        f"{os.cpu_count()} CPU cores, {args.threads} thread(s) per framework; "
        f"about {args.seconds:g} s timed per cell after a warm-up; each cell is the median of "
        f"{args.repeats} round(s), the implementations in a rotating order within one run.\n",
        "## seqkit (default) against PyTorch\n",
        "Both sides do the same work: same shapes, same lengths, same loss masking; the padded batch "
        "runs over the padded tensor on both sides (no packing). Ratios above 1: seqkit faster. "
        "Paired: seqkit / PyTorch within each round.\n",
        md_table(headline),
        "\n## Training, every implementation (tokens/s)\n",
        md_table(rows),
        "\n## Inference (forward pass of the same batch, tokens/s)\n",
        md_table(infer_rows),
    ]
    if lever_rows:
        md += [
            "\n## Levers: one LSTM(256) layer, forward + backward of batch 64 x 100 x 64, gradients of the "
            "weights and the input on every row (best of 5, ms)\n",
            md_table(lever_rows),
        ]
    if loads:
        notes.append(
            f"1-minute load average when each training measurement started: {min(loads):.1f} to {max(loads):.1f}, "
            f"median {_median(loads):.1f} ({os.cpu_count()} cores; a measurement itself adds up to {args.threads})."
        )
    if notes:
        md.append("\n" + "\n".join(notes) + "\n")
    write_result(
        args.out,
        {
            "headline": headline,
            "train": rows,
            "inference": infer_rows,
            "levers": lever_rows,
            "raw": raw,
            "notes": notes,
        },
        "\n".join(md),
        module="speed",
    )
    print("\n".join(md))
    return {"headline": headline, "train": rows, "inference": infer_rows}


if __name__ == "__main__":
    main()
