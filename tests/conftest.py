"""Shared test setup.

pytest-xdist starts its workers with ``COLUMNS=80`` in the environment; rich reads it once, when the CLI's
console is made (at import), and would then wrap every table at 80 columns whatever width a test asks for
(``CliRunner.invoke(..., env={"COLUMNS": ...})``). Without it the console reads the width at each print.
"""

import os

os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
