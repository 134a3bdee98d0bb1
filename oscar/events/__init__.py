"""Event sources and routing of object-created events to services."""
