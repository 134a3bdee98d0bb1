"""`oscar-cli`: the command-line client, compatible with upstream oscar-cli."""
