"""``python -m probmix``: the command line, see :mod:`probmix.cli`."""

import sys

from .cli import main

sys.exit(main())
