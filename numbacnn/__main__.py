"""``python -m numbacnn`` (numbacnn.__main__): the ``numbacnn`` command (numbacnn.cli.entry)."""
from numbacnn.cli import entry

entry()
