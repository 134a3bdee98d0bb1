"""`python -m oscar` runs the `oscar` command."""

from oscar.cli import main

main()
