"""`python -m mimictools` == `mimic`."""

from __future__ import annotations

from mimictools.cli.app import main

if __name__ == "__main__":
    main()
