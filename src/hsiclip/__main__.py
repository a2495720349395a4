"""`python -m hsiclip`: the command line."""

from .cli import entry

entry()
