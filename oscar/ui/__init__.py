"""The web dashboard's committed build (`static/`), served by `oscar.api.ui` at `/ui`."""
