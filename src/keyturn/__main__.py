"""``python -m keyturn``: the same as the ``keyturn`` command."""

import sys

from keyturn.cli import main

sys.exit(main())
