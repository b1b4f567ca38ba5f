"""`python -m cxpolicy` runs the command line.

Input: the command line. Output: what the `cxpolicy` command prints, and its exit code.
"""

from cxpolicy.cli import main

main()
