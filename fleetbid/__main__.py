"""`python -m fleetbid` runs the `fleetbid` command."""

import sys

from fleetbid.cli import main

sys.exit(main())
