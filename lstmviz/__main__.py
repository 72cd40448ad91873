"""``python -m lstmviz`` and the ``lstmviz`` console script (``lstmviz.__main__:main``)."""

import os
import sys

# One BLAS thread unless the user chose otherwise: the engine's matrices are small, and OpenBLAS's
# worker threads then cost far more than they save (measured on a busy 2-core machine: a training
# step took 667 ms of CPU with the default threads and 64 ms with one). Must precede numpy's import.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from engine.runtime import keep_freed_memory  # noqa: E402
from lstmviz.cli import main  # noqa: E402

keep_freed_memory()  # training steps reuse their temporaries instead of page-faulting afresh

if __name__ == "__main__":
    sys.exit(main())
