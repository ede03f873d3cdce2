"""Errors raised when a user's data cannot be read or breaks its study's contract."""


class DataError(Exception):
    """A data file cannot be read, or its contents break a rule of the study's data contract.

    The message names the file, the column, the first offending rows and the rule, so that the
    command line can print it without a traceback.
    """
