"""Output made for terminals and log files alike.

Progress bars redraw a line many times a second: useful on a terminal, noise in a file. So bars
appear only when stderr is a terminal and INFO is shown; otherwise the training loop's one INFO
line per epoch is the progress. `-q` keeps warnings only, `-v` adds gcnseg's debug messages.
Other libraries' loggers stay at WARNING whatever the flags.
"""

from __future__ import annotations

import logging
import sys

LOGGER = "gcnseg"


def setup_logging(verbosity: int = 0) -> None:
    """-1 (quiet): warnings only; 0: gcnseg's INFO lines; 1 or more: gcnseg's DEBUG lines too."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.getLogger(LOGGER).setLevel(level)


def progress_enabled() -> bool:
    """Whether to draw progress bars: stderr is a terminal and INFO messages are shown."""
    return sys.stderr.isatty() and logging.getLogger(LOGGER).isEnabledFor(logging.INFO)
