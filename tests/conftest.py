import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests run several processes side by side on small machines; one BLAS thread each avoids the
# oversubscription that makes dense linear algebra orders of magnitude slower.
try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
    pass
