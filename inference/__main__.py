import os
import sys

# pyfixest 0.60 orders the absorbed effects of a formula by iterating a set of their names, so
# the order of its alternating projections, and with it the last digits of every estimate and
# standard error (up to the 8th), changed with Python's per-process string hashing. A fixed
# hash seed makes the same command on the same machine give byte-identical results.
if os.environ.get("PYTHONHASHSEED") is None:
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, "-m", "inference", *sys.argv[1:]])

from inference.cli import main  # noqa: E402

sys.exit(main())
