"""Refused uploads leave the keep-alive connection usable (found while testing scoped keys).

A PUT refused before its body was read (missing bucket, denied key) left the body in the
connection: the client's next request arrived as `<body>PUT ...` and got 405.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from tests.fixtures.server import RunningServer
from tests.fixtures.services import unique_name


def test_refused_uploads_in_a_row_each_get_their_own_answer(server: RunningServer) -> None:
    s3 = server.s3()
    missing = unique_name("missing")
    for _ in range(3):
        try:
            s3.put_object(Bucket=missing, Key="k", Body=b"some body bytes")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "NoSuchBucket"
        else:
            raise AssertionError("the upload to a missing bucket succeeded")
    assert s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
