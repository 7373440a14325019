"""``python -m jobplane.cli``: the ``jobplane`` command."""

import sys

from . import main

sys.exit(main())
