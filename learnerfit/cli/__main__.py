"""`python -m learnerfit.cli`, the same as the `learnerfit` command."""

import sys

from learnerfit.cli import main

sys.exit(main())
