"""``python -m nnmath`` is the ``nnmath`` command."""

import sys

from nnmath.cli import main

sys.exit(main())
