"""`python -m qa` runs the `cables` command."""

import sys

from qa.cli import main

sys.exit(main())
