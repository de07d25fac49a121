"""``python -m agents.cli`` is ``privrec``."""

import sys

from agents.cli import main

sys.exit(main())
