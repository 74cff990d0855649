import os
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SEQKIT_OFFLINE", "1")  # unit tests never download

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    # Pure-NumPy test modules should not pay for importing TensorFlow.
    if "keras" in sys.modules:
        from seqkit.seed import set_seed

        set_seed(1234)
    else:
        random.seed(1234)
        np.random.seed(1234)
    yield
