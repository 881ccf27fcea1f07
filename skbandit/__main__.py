"""``python -m skbandit`` runs the ``skbandit`` command line."""

import sys

from .cli import main

sys.exit(main())
