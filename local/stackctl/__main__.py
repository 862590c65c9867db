"""`python local/stackctl ...` (or `python -m stackctl ...` with local/ on the path)."""

import sys
from pathlib import Path

# Run as a folder, Python puts this folder first on the path: its parent goes there
# instead, so `stackctl` imports as the package it is and its modules shadow nothing.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)
elif str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from stackctl.cli import main  # noqa: E402

sys.exit(main())
