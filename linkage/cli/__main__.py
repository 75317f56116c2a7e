"""``python -m linkage.cli``: the same as the ``linkage`` command."""

from linkage.cli import main

main()
