"""Event bridges: sources that turn new files and messages elsewhere into jobs."""
