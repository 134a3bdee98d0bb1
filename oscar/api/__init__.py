"""The REST API: one router per resource, mounted by `oscar.app.create_app`."""
