"""Pure-data pydantic models: services, storage providers, FDL files."""
