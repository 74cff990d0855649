"""Import TensorFlow without its start-up noise on stderr.

TensorFlow's GPU-enabled wheel writes C++ log lines ("Could not find cuda
drivers", "failed call to cuInit") before its log level applies, even with
TF_CPP_MIN_LOG_LEVEL set. The CLI promises one line per error, so the import
and the device probe run with file descriptor 2 pointed at /dev/null.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("SEQKIT_TF_VERBOSE") == "1":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
