"""seqkit: recurrent sequence models for real data, on Keras 3."""

__version__ = "0.1.0"

from seqkit.errors import SeqkitError  # noqa: E402
from seqkit.seed import set_seed  # noqa: E402

__all__ = ["SeqkitError", "set_seed", "__version__"]
