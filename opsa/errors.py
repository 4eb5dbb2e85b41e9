"""The one exception type the command line turns into a one-line error."""


class InputError(Exception):
    """A bad input: the message names the file, key, column or id and says what is wrong."""
