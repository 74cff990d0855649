import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SEQKIT_OFFLINE", "1")  # unit tests never download

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    from seqkit.seed import set_seed

    set_seed(1234)
    yield
