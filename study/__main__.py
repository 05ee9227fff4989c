"""`python -m study ...` runs the `study` command (for hosts where the console script is not on PATH)."""
import sys

from study.cli import main

sys.exit(main())
