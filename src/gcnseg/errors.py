"""The one exception type for a user's mistake: the CLI prints it as a single line, no traceback."""


class GcnsegError(Exception):
    """Bad input from the user (missing file, corrupt data, unknown name, bad setting)."""
