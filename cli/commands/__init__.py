"""oscar-cli command groups."""
