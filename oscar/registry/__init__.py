"""Where service definitions are kept: one interface, one module per backend."""
