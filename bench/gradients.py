"""Vanishing and exploding gradients, and what gradient clipping does to an update.

1. The lecture's toy RNN ``h_t = tanh(w_xh x_t + w_hh h_{t-1} + b)`` with ``w_hh = 3``,
   ``w_xh = 2``, ``b = 1``: ``dh_T/dh_t = prod_k w_hh * (1 - h_k^2)``, computed with the
   NumPy reference for two input sequences:
   * ``x_t = 1``: the state saturates (``h ~ 1``, ``tanh' ~ 6e-5``), each step multiplies the
     gradient by ``~2e-4``: it vanishes;
   * ``x_t = -0.5``: the pre-activation stays exactly 0 (``tanh' = 1``), each step multiplies
     by ``w_hh = 3``: it explodes.
2. Keras ``SimpleRNN``, ``LSTM`` and ``GRU`` with their default initialisation on random
   inputs: ``||dL/dx_t||`` for ``L = sum(h_T)``, for every earlier step ``t``.
3. Clipping the exploding toy gradient: the update of plain SGD without clipping, with
   Keras' ``clipnorm`` (per variable), ``global_clipnorm`` and ``clipvalue``: its length and
   its cosine with the unclipped update.

Writes ``bench/results/gradients.{json,md,png}``.

    python -m bench.gradients [--steps 100] [--units 32]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from bench.common import RESULTS, md_table, write_result

TOY = {"w_xh": 2.0, "w_hh": 3.0, "b": 1.0}


def toy_state_gradients(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x (T,)`` -> ``(hs (T,), |dh_T/dh_t| (T,))`` for the toy RNN, via the NumPy reference's BPTT."""
    from seqkit import reference

    W_x, W_h, b = (np.array([[TOY["w_xh"]]]), np.array([[TOY["w_hh"]]]), np.array([TOY["b"]]))
    hs, cache = reference.rnn_forward(x.reshape(1, -1, 1), None, W_x, W_h, b)
    grads = reference.rnn_backward(None, cache, dh_last=np.ones((1, 1)))
    # dx_t = dh_T/da_t * w_xh and da_t = dh_T/dh_t * (1 - h_t^2), so dh_T/dh_t = dx_t / (w_xh (1 - h_t^2)).
    da = grads["dx"][0, :, 0] / TOY["w_xh"]
    dh = da / (1.0 - hs[0, :, 0] ** 2)
    return hs[0, :, 0], np.abs(dh)


def keras_input_gradients(
    cell: str, steps: int, units: int, seed: int, batch: int = 16, forget_bias: float | None = None
) -> np.ndarray:
    """Mean over a batch of ``||dL/dx_t||`` ``(steps,)`` for ``L = sum(h_T)`` of a freshly initialised layer.

    ``forget_bias`` (LSTM only) overrides the forget-gate bias (Keras initialises it to 1).
    """
    import keras
    import tensorflow as tf

    layer_cls = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    layer = layer_cls(
        units,
        seed=seed,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed),
    )
    x = tf.constant(np.random.default_rng(seed).normal(size=(batch, steps, 8)).astype("float32"))
    layer.build(x.shape)
    if forget_bias is not None:
        bias = layer.cell.bias.numpy()
        bias[units : 2 * units] = forget_bias
        layer.cell.bias.assign(bias)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x))
    g = tape.gradient(loss, x).numpy()
    return np.linalg.norm(g, axis=-1).mean(axis=0)


def clipping_table(steps: int = 20, lr: float = 0.1, limit: float = 1.0) -> tuple[list[dict], dict]:
    """SGD updates for the exploding toy gradient (``x_t = -0.5``, ``L = (h_T - 1)^2``) under each clipping rule."""
    import keras
    import tensorflow as tf

    layer = keras.layers.SimpleRNN(1)
    x = np.full((1, steps, 1), -0.5, "float32")
    layer(x)
    layer.set_weights([np.array([[TOY["w_xh"]]]), np.array([[TOY["w_hh"]]]), np.array([TOY["b"]])])
    start = [v.numpy().copy() for v in layer.trainable_variables]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x) - 1.0))
    grads = [g.numpy() for g in tape.gradient(loss, layer.trainable_variables)]
    g_flat = np.concatenate([g.ravel() for g in grads])
    rules = {
        "none": {},
        f"clipnorm={limit} (per variable)": {"clipnorm": limit},
        f"global_clipnorm={limit}": {"global_clipnorm": limit},
        f"clipvalue={limit}": {"clipvalue": limit},
    }
    rows = []
    for name, kwargs in rules.items():
        for v, w in zip(layer.trainable_variables, start):
            v.assign(w)
        opt = keras.optimizers.SGD(learning_rate=lr, **kwargs)
        opt.apply_gradients(zip([tf.constant(g) for g in grads], layer.trainable_variables))
        update = np.concatenate([(v.numpy() - w).ravel() for v, w in zip(layer.trainable_variables, start)])
        cos = float(update @ -g_flat / (np.linalg.norm(update) * np.linalg.norm(g_flat)))
        rows.append(
            {
                "clipping": name,
                "|update|": float(np.linalg.norm(update)),
                "cos(update, -grad)": cos,
                "update (w_xh, w_hh, b)": "(" + ", ".join(f"{u:.3g}" for u in update) + ")",
            }
        )
    info = {"steps": steps, "lr": lr, "limit": limit, "loss": float(loss), "grad": g_flat.tolist()}
    return rows, info


def plot(toy: dict[str, np.ndarray], layers: dict[str, np.ndarray], path) -> None:
    """Two panels (the toy's gradients span hundreds of orders of magnitude): gradient norm vs steps back."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqkit.io import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, curves, title in (
        (axes[0], toy, "toy RNN: |dh_T / dh_t|"),
        (axes[1], layers, "Keras layers at initialisation: ||dL / dx_t||"),
    ):
        for name, values in curves.items():
            back = np.arange(len(values))[::-1]  # steps between t and the last step T
            ax.semilogy(back, np.maximum(values, 1e-300), label=name, lw=1.6)
        ax.set_xlabel("steps back from the last step (T - t)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("gradient norm w.r.t. step t")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="sequence length for the Keras layers")
    parser.add_argument("--toy-steps", type=int, default=30, help="sequence length for the toy RNN")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from seqkit.seed import set_seed

    set_seed(args.seed)

    toy_curves: dict[str, np.ndarray] = {}
    layer_curves: dict[str, np.ndarray] = {}
    toy_rows = []
    for label, value in (("saturating, x_t = 1", 1.0), ("linear regime, x_t = -0.5", -0.5)):
        hs, dh = toy_state_gradients(np.full(args.toy_steps, value))
        toy_curves[label] = dh
        factor = float(dh[-2] / dh[-1]) if dh[-1] else float("nan")
        toy_rows.append(
            {
                "input": label,
                "h_T": float(hs[-1]),
                "factor per step": factor,
                "|dh_T/dh_T-10|": float(dh[-11]),
                f"|dh_T/dh_1| (T={args.toy_steps})": float(dh[0]),
            }
        )
    layer_rows = []
    for cell, name, forget_bias in (
        ("simple", "SimpleRNN", None),
        ("lstm", "LSTM", None),
        ("lstm", "LSTM, forget bias 5", 5.0),
        ("gru", "GRU", None),
    ):
        g = keras_input_gradients(cell, args.steps, args.units, args.seed, forget_bias=forget_bias)
        layer_curves[name] = g
        row = {"layer": name}
        for k in (0, 10, 25, 50, args.steps - 1):
            if k < args.steps:
                row[f"T-t={k}"] = float(g[-1 - k])
        layer_rows.append(row)
    clip_rows, clip_info = clipping_table()
    plot(toy_curves, layer_curves, RESULTS / "gradients.png")

    md = [
        "# Vanishing and exploding gradients\n",
        "![gradient norm per step](gradients.png)\n",
        f"## Toy RNN h_t = tanh({TOY['w_xh']:g} x_t + {TOY['w_hh']:g} h_(t-1) + {TOY['b']:g})\n",
        md_table(toy_rows),
        f"\n## Keras layers ({args.units} units, default initialisation), ||dL/dx_t|| for L = sum(h_T), T = {args.steps}\n",
        md_table(layer_rows),
        f"\n## Clipping the exploding toy gradient (T = {clip_info['steps']}, SGD lr = {clip_info['lr']:g}, "
        f"|grad| = {np.linalg.norm(clip_info['grad']):.3g})\n",
        md_table(clip_rows),
    ]
    data = {
        "toy": toy_rows,
        "layers": layer_rows,
        "clipping": clip_rows,
        "clipping_setup": clip_info,
        "curves": {
            "toy": {k: v.tolist() for k, v in toy_curves.items()},
            "layers": {k: v.tolist() for k, v in layer_curves.items()},
        },
        "args": vars(args),
    }
    write_result("gradients", data, "\n".join(md))
    print("\n".join(md))
    return data


if __name__ == "__main__":
    main()
