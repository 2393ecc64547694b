from numbacnn.cli import entry

entry()
