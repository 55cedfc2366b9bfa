"""Entry point: ``python -m slipway_trainer`` (see ``cli`` for arguments and outputs)."""

import sys

from .cli import main

sys.exit(main())
