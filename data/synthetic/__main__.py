"""Regenerate the shipped synthetic panels: ``python -m data.synthetic [STUDY ...]``."""

import sys

from data.synthetic import SYNTHETIC_STUDIES, write_default

if __name__ == "__main__":
    for name in sys.argv[1:] or SYNTHETIC_STUDIES:
        print(f"wrote SYNTHETIC panel of {name} to {write_default(name)}")
