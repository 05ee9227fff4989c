"""The one error type the command line turns into a clear message and exit code 2."""


class StudyError(Exception):
    """Bad input or state the user can fix. The message names the file, line or key at fault."""

    exit_code = 2
