"""The CLI's subcommands (numbacnn.commands): one module per subcommand, each with a click command named ``cli``."""
