"""The few S3 XML documents the embedded store answers with."""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import escape

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def iso(moment: datetime) -> str:
    """S3's timestamp format (milliseconds, Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def element(name: str, value: object) -> str:
    """`<name>value</name>` with the value escaped."""
    return f"<{name}>{escape(str(value))}</{name}>"


def document(root: str, body: str) -> bytes:
    """A complete XML document in the S3 namespace."""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{body}</{root}>'.encode()


def error(code: str, message: str, resource: str, request_id: str) -> bytes:
    """An S3 error document."""
    body = (
        element("Code", code)
        + element("Message", message)
        + element("Resource", resource)
        + element("RequestId", request_id)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()
