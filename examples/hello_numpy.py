"""The lectures' "hello" character model, trained with the NumPy reference (``seqkit.reference``).

Vocabulary ``h, e, l, o``; the input ``"hell"`` should predict ``"ello"``, one character ahead.
A recurrent layer (SimpleRNN by default, like the lecture's diagram with 3 hidden units)
feeds a softmax output layer ``y_t = h_t W_y + b_y``; the loss is the mean cross-entropy over
the four steps; Adagrad with global-norm clipping, as in min-char-rnn. Everything, including
the gradient of the recurrent layer, is computed by hand in NumPy.

Run from the repository root::

    python examples/hello_numpy.py --cell lstm --steps 200
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

try:
    from seqkit import reference as ref
except ImportError:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seqkit import reference as ref

VOCAB = ("h", "e", "l", "o")
CHAR_TO_ID = {c: i for i, c in enumerate(VOCAB)}


@dataclasses.dataclass
class HelloModel:
    """Recurrent layer ``params`` plus the output layer ``W_y (units, vocab)``, ``b_y (vocab,)``."""

    params: ref.Params
    W_y: np.ndarray
    b_y: np.ndarray
    losses: list[float]


def one_hot(text: str) -> np.ndarray:
    """``(1, len(text), vocab)`` one-hot batch of a string over ``VOCAB``."""
    x = np.zeros((1, len(text), len(VOCAB)))
    x[0, np.arange(len(text)), [CHAR_TO_ID[c] for c in text]] = 1.0
    return x


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def loss_and_grads(model: HelloModel, text: str, target: str) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy of predicting ``target`` from ``text`` and its gradients for every weight."""
    x = one_hot(text)
    ids = np.array([CHAR_TO_ID[c] for c in target])
    hs, _, cache = ref.forward(model.params, x)
    probs = softmax(hs[0] @ model.W_y + model.b_y)  # (T, vocab)
    T = len(text)
    loss = -np.mean(np.log(probs[np.arange(T), ids]))
    dlogits = probs.copy()
    dlogits[np.arange(T), ids] -= 1.0  # softmax + cross-entropy: p - y
    dlogits /= T
    dhs = (dlogits @ model.W_y.T)[None]  # back into the recurrent layer, (1, T, units)
    grads = ref.weight_grads(ref.backward(dhs, cache))
    grads.update(dW_y=hs[0].T @ dlogits, db_y=dlogits.sum(axis=0))
    return float(loss), grads


def train(
    cell: str = "simple",
    units: int = 3,
    steps: int = 300,
    lr: float = 0.1,
    clip: float = 5.0,
    seed: int = 0,
    text: str = "hell",
    target: str = "ello",
) -> HelloModel:
    """Train on the single pair ``text -> target`` with Adagrad; return the model and the loss per step."""
    params = ref.init_params(cell, len(VOCAB), units, seed=seed, scale=1.0)
    rng = np.random.default_rng(seed + 1)
    model = HelloModel(params, rng.standard_normal((units, len(VOCAB))) * 0.5, np.zeros(len(VOCAB)), [])
    weights = {"dW_x": params.W_x, "dW_h": params.W_h, "db": params.b, "dW_y": model.W_y, "db_y": model.b_y}
    memory = {k: np.zeros_like(w) for k, w in weights.items()}  # Adagrad's running sum of squared gradients
    for _ in range(steps):
        loss, grads = loss_and_grads(model, text, target)
        model.losses.append(loss)
        grads, _ = ref.clip_by_global_norm(grads, clip)
        for k, w in weights.items():
            memory[k] += grads[k] ** 2
            w -= lr * grads[k] / np.sqrt(memory[k] + 1e-8)  # in place: `weights` aliases the model's arrays
    return model


def predict(model: HelloModel, text: str = "hell") -> str:
    """Greedy next-character prediction at every step of ``text`` (teacher forcing)."""
    hs, _, _ = ref.forward(model.params, one_hot(text))
    return "".join(VOCAB[i] for i in np.argmax(hs[0] @ model.W_y + model.b_y, axis=-1))


def generate(model: HelloModel, start: str = "h", length: int = 4) -> str:
    """Feed each greedy prediction back in as the next input, carrying the recurrent state."""
    state = None
    out = []
    ch = start
    for _ in range(length):
        hs, state, _ = ref.forward(model.params, one_hot(ch), state)
        ch = VOCAB[int(np.argmax(hs[0, -1] @ model.W_y + model.b_y))]
        out.append(ch)
    return start + "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="simple", choices=ref.CELLS)
    parser.add_argument("--units", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = train(args.cell, args.units, args.steps, args.lr, seed=args.seed)
    every = max(1, args.steps // 6)
    for step in [*range(0, args.steps, every), args.steps - 1]:
        print(f"step {step:4d}  loss {model.losses[step]:.4f}")
    print(f"predict('hell') = {predict(model, 'hell')!r}   generate('h') = {generate(model, 'h')!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
