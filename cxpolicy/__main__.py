"""`python -m cxpolicy` runs the command line."""

from cxpolicy.cli import main

main()
