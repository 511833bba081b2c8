"""Text rules that every layer shares."""

import string

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(value: str) -> str:
    """An e-mail as the importer compares it: ASCII letters folded to lower case, every other character kept.

    Case-insensitive for what case means in addresses people type (ASCII), and exact beyond it, so that a
    look-alike never matches someone else's account: the Kelvin sign (U+212A) is not a k, whatever
    str.lower() says. The same on every database: SQLite's LOWER() folds only ASCII letters too.
    """
    return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)  # the same, faster for ASCII
