"""``python -m osha.actorhost --fd N``: the child process's entry point."""

import sys

from osha.actorhost._main import main

sys.exit(main())
