"""`python -m ops <verb>`: the operator's command (`trial <verb>` once installed); see `ops/cli.py`."""

import sys

from ops.cli import main

sys.exit(main())
