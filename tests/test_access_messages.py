"""Credential and region faults that no local server reproduces, at the translation seam.

Each ClientError is what botocore itself makes of S3's raw HTTP reply (status, headers, XML
body as AWS documents and sends them), so the agent's message is checked on the real parse.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from lfs_agent.errors import AccessDenied, StoreRejected, TransferError
from lfs_agent.s3errors import Where, translate

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
BUCKET = "team-models"
KEY = f"reg/objects/4d/7a/{OID}"


def aws_reply(operation: str, status: int, body: str = "", **headers: str) -> ClientError:
    """The ClientError botocore raises for this raw S3 reply to `operation`."""
    model = botocore.session.get_session().get_service_model("s3")
    op = model.operation_model(operation)
    raw: Any = {
        "status_code": status,
        "headers": {"x-amz-request-id": "4442587FB7D0A2F9", **headers},
        "body": body.encode(),
    }
    assert op.output_shape is not None
    parsed: Any = create_parser("rest-xml").parse(raw, op.output_shape)
    return ClientError(parsed, operation)


def error_xml(code: str, message: str, **extra: str) -> str:
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}"
        "<RequestId>4442587FB7D0A2F9</RequestId><HostId>aGVsbG8=</HostId></Error>"
    )


REGION_WRONG = (
    "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"  # noqa: E501
)
REDIRECT = (
    "The bucket you are attempting to access must be addressed using the specified endpoint. "
    "Please send all future requests to this endpoint."
)

CASES: dict[str, tuple[ClientError, type[TransferError], list[str]]] = {
    "expired-token": (
        aws_reply("GetObject", 400, error_xml("ExpiredToken", "The provided token has expired.")),
        AccessDenied,
        ["expired or invalid session token (ExpiredToken)", "aws sso login", "AWS_SESSION_TOKEN"],
    ),
    "invalid-token": (
        aws_reply(
            "PutObject",
            400,
            error_xml("InvalidToken", "The provided token is malformed or otherwise invalid."),
        ),
        AccessDenied,
        ["expired or invalid session token (InvalidToken)", "AWS_SESSION_TOKEN"],
    ),
    "region-in-auth-error": (
        aws_reply(
            "GetObject",
            400,
            error_xml("AuthorizationHeaderMalformed", REGION_WRONG, Region="eu-west-1"),
        ),
        StoreRejected,
        ["is in region eu-west-1", "git config lfs-s3.region eu-west-1", ".lfs-s3config"],
    ),
    "permanent-redirect": (
        aws_reply(
            "PutObject",
            301,
            error_xml(
                "PermanentRedirect",
                REDIRECT,
                Bucket=BUCKET,
                Endpoint=f"{BUCKET}.s3.ap-southeast-2.amazonaws.com",
            ),
            **{"x-amz-bucket-region": "ap-southeast-2"},
        ),
        StoreRejected,
        ["is in region ap-southeast-2", "git config lfs-s3.region ap-southeast-2"],
    ),
    "head-redirect-without-body": (
        aws_reply("HeadObject", 301, **{"x-amz-bucket-region": "eu-central-1"}),
        StoreRejected,
        ["is in region eu-central-1,", "(301)", "git config lfs-s3.region eu-central-1"],
    ),
    "redirect-without-region": (
        aws_reply("GetObject", 301, error_xml("PermanentRedirect", REDIRECT)),
        StoreRejected,
        ["is in another region", "git config lfs-s3.region REGION", "get-bucket-location"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_aws_reply_gets_its_own_actionable_message(case: str) -> None:
    exc, expected, texts = CASES[case]
    action = "upload" if exc.operation_name == "PutObject" else "download"

    err = translate(exc, Where(action, OID, BUCKET, KEY, "https://s3.amazonaws.com"))

    assert type(err) is expected
    assert (err.oid, err.key) == (OID, KEY)
    for text in texts:
        assert text in str(err), (text, str(err))


def test_malformed_authorization_not_about_regions_is_no_region_message() -> None:
    exc = aws_reply(
        "GetObject", 400, error_xml("AuthorizationHeaderMalformed", "The header is malformed")
    )

    err = translate(exc, Where("download", OID, BUCKET, KEY, "https://s3.amazonaws.com"))

    assert "region" not in str(err)
    assert "AuthorizationHeaderMalformed" in str(err)


def test_denied_write_names_the_location_and_denied_read_the_object() -> None:
    denied = aws_reply("PutObject", 403, error_xml("AccessDenied", "Access Denied"))

    write = translate(denied, Where("upload", OID, BUCKET, KEY, "https://s3.amazonaws.com"))
    read = translate(denied, Where("download", OID, BUCKET, KEY, "https://s3.amazonaws.com"))

    assert str(write).startswith(
        f"access denied: this key cannot write to s3://{BUCKET}/reg (AccessDenied)"
    )
    assert "s3:PutObject" in str(write) and "AWS_PROFILE" in str(write)
    assert str(read).startswith(
        f"access denied: this key cannot read s3://{BUCKET}/{KEY} (AccessDenied)"
    )
    assert "s3:GetObject" in str(read)
