"""Authentication: who is calling (admin via Basic, or the holder of a service token)."""
