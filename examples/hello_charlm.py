"""The lecture's "hello" example with seqkit's character language model.

Vocabulary ``h, e, l, o``; trained on the input ``"hell"`` with targets ``"ello"``
(each character predicts the next), the model then predicts ``"ello"`` from ``"hell"``.
It is the same model ``python -m seqkit train charlm`` builds (``Embedding ->
RecurrentStack -> Dense``), trained with the same TBPTT step, just tiny.

Run from the repository root::

    python examples/hello_charlm.py --cell lstm --steps 150
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import tasks.charlm  # noqa: F401
except ImportError:  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqkit.config import from_dict
from seqkit.data.corpus import CharVocab
from seqkit.sampling import CharLM
from seqkit.seed import set_seed
from seqkit.tbptt import TBPTTTrainer
from tasks.charlm import CharLMConfig, build_char_model

VOCAB = CharVocab(["h", "e", "l", "o"], unk=False)  # no UNK slot: exactly the lecture's 4 characters


def train_hello(cell: str = "lstm", units: int = 8, steps: int = 150, seed: int = 0, jit_compile: bool = False):
    """Train on ``"hell" -> "ello"``; returns ``(CharLM, losses)``."""
    set_seed(seed)
    cfg = from_dict(
        CharLMConfig,
        dict(cell=cell, units=[units], embedding_dim=4, learning_rate=0.05, jit_compile=jit_compile, seed=seed),
        source="hello",
    )
    model = build_char_model(cfg, VOCAB.size)
    trainer = TBPTTTrainer(model, jit_compile=jit_compile)
    x = VOCAB.encode("hell")[None, :]
    y = VOCAB.encode("ello")[None, :]
    losses = []
    for _ in range(steps):
        # Every step starts from the zero state: "hello" is one whole sequence, not a stream.
        loss, _ = trainer.train_step(x, y, trainer.zero_state(1))
        losses.append(float(loss))
    return CharLM(model, VOCAB, jit_compile=jit_compile), losses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", choices=("simple", "gru", "lstm"), default="lstm")
    p.add_argument("--units", type=int, default=8)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    lm, losses = train_hello(args.cell, args.units, args.steps, args.seed)
    print(f"loss: {losses[0]:.3f} -> {losses[-1]:.4f} after {args.steps} steps")
    probs = np.exp(lm.trace("hell")["logprobs"])
    for ch, row in zip("hell", probs):
        shown = ", ".join(f"{c}={p:.2f}" for c, p in zip(VOCAB.chars, row))
        print(f"after {ch!r}: {shown}")
    predicted = lm.next_chars("hell")
    print(f'"hell" -> "{predicted}"')
    return 0 if predicted == "ello" else 1


if __name__ == "__main__":
    raise SystemExit(main())
