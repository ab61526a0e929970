"""``python -m osha`` runs the command line."""

from osha.cli import main

main()
