"""``python -m slipway``: the same as the ``slipway`` command (``run`` when no command is given)."""

import sys

from slipway.cli import main

sys.exit(main())
