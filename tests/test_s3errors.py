"""translate(): every botocore failure becomes the agent's error class with a message to act on."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from lfs_agent.errors import (
    AccessDenied,
    AgentError,
    CorruptObject,
    Interrupted,
    LocalIOError,
    ObjectNotFound,
    StorageUnavailable,
    StoreRejected,
    TransferError,
)
from lfs_agent.s3errors import Where, translate, translated

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
BUCKET = "team-models"
KEY = f"reg/objects/4d/7a/{OID}"
URL = f"s3://{BUCKET}/{KEY}"
ENDPOINT = "https://s3.example.test"
WHERE = Where("download", OID, BUCKET, KEY, ENDPOINT)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
SIGNATURE = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"


def client_error(
    code: str, status: int, message: str = "m", operation: str = "GetObject"
) -> ClientError:
    error: dict[str, Any] = {"Code": code, "Message": message}
    # What S3 really adds to a SignatureDoesNotMatch, plus secrets where they could leak from.
    error.update(
        AWSAccessKeyId="AKIAIOSFODNN7EXAMPLE",
        StringToSign=f"AWS4-HMAC-SHA256 {SIGNATURE}",
        SignatureProvided=SIGNATURE,
        CanonicalRequest=f"GET /{KEY} aws_secret_access_key={SECRET}",
    )
    # Any: the stubs' TypedDict wants every ResponseMetadata key, as a real response has.
    response: Any = {
        "Error": error,
        "ResponseMetadata": {
            "HTTPStatusCode": status,
            "HTTPHeaders": {
                "authorization": f"AWS4-HMAC-SHA256 Credential=x, Signature={SIGNATURE}",
                "x-amz-security-token": SECRET,
            },
            "RequestId": "REQ123",
        },
    }
    return ClientError(response, operation)


NOT_FOUND_TEXT = [OID, URL, "git lfs push"]
DENIED_TEXT = [URL, "AWS_PROFILE", "aws sso login"]
DIGEST_TEXT = [OID, "git config lfs-s3.checksum off", "git lfs fsck"]
UNAVAILABLE_TEXT = [ENDPOINT, URL, "Try again later"]

CASES: list[tuple[str, int, type[TransferError], list[str]]] = [
    ("NoSuchKey", 404, ObjectNotFound, NOT_FOUND_TEXT),
    ("404", 404, ObjectNotFound, NOT_FOUND_TEXT),  # HEAD: no body, the status is the code
    ("NotFound", 404, ObjectNotFound, NOT_FOUND_TEXT),
    ("", 404, ObjectNotFound, NOT_FOUND_TEXT),
    ("NoSuchBucket", 404, ObjectNotFound, [f"bucket '{BUCKET}' does not exist", ENDPOINT]),
    ("AccessDenied", 403, AccessDenied, ["(AccessDenied)", *DENIED_TEXT]),
    ("403", 403, AccessDenied, ["(403)", *DENIED_TEXT]),
    ("", 403, AccessDenied, ["(403)", *DENIED_TEXT]),
    ("Forbidden", 403, AccessDenied, DENIED_TEXT),
    ("InvalidAccessKeyId", 403, AccessDenied, ["InvalidAccessKeyId", *DENIED_TEXT]),
    ("SignatureDoesNotMatch", 403, AccessDenied, ["SignatureDoesNotMatch", *DENIED_TEXT]),
    ("ExpiredToken", 400, AccessDenied, ["ExpiredToken", *DENIED_TEXT]),
    ("BadDigest", 400, CorruptObject, ["BadDigest", *DIGEST_TEXT]),
    ("InvalidDigest", 400, CorruptObject, DIGEST_TEXT),
    ("XAmzContentSHA256Mismatch", 400, CorruptObject, DIGEST_TEXT),
    ("SlowDown", 503, StorageUnavailable, ["SlowDown", *UNAVAILABLE_TEXT]),
    ("503", 503, StorageUnavailable, ["503", *UNAVAILABLE_TEXT]),
    ("", 503, StorageUnavailable, ["503", *UNAVAILABLE_TEXT]),
    ("InternalError", 500, StorageUnavailable, ["InternalError", *UNAVAILABLE_TEXT]),
    ("ServiceUnavailable", 503, StorageUnavailable, UNAVAILABLE_TEXT),
    ("RequestTimeout", 400, StorageUnavailable, UNAVAILABLE_TEXT),
    ("NoSuchUpload", 404, StorageUnavailable, [URL, "push again"]),
]


@pytest.mark.parametrize(
    ("code", "status", "expected", "texts"),
    CASES,
    ids=[f"{code or 'no-code'}-{status}" for code, status, _, _ in CASES],
)
def test_client_error_maps_to_class_and_message(
    code: str, status: int, expected: type[TransferError], texts: list[str]
) -> None:
    exc = client_error(code, status)

    err = translate(exc, WHERE)

    assert type(err) is expected
    assert err.oid == OID
    assert err.key == KEY
    message = str(err)
    for text in texts:
        assert text in message, (text, message)
    _assert_no_secret(message)


def test_error_classes_carry_the_lfs_codes() -> None:
    assert [
        c.code
        for c in (
            ObjectNotFound,
            AccessDenied,
            CorruptObject,
            StoreRejected,
            StorageUnavailable,
            LocalIOError,
            TransferError,
        )
    ] == [404, 403, 422, 400, 503, 500, 500]


def test_unknown_code_is_store_rejected_with_s3s_message() -> None:
    err = translate(client_error("EntityTooLarge", 400, "Your proposed upload is huge"), WHERE)

    assert type(err) is StoreRejected
    assert err.code == 400
    assert "EntityTooLarge" in str(err)
    assert "Your proposed upload is huge" in str(err)
    assert URL in str(err)
    assert "checksum off" not in str(err)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: sha256"),
        ("InvalidRequest", "x-amz-checksum-crc32 header is not supported"),
        ("InvalidArgument", "Unsupported header 'x-amz-sdk-checksum-algorithm'"),
        ("NotImplemented", "A header you provided implies functionality that is not implemented"),
    ],
)
def test_checksum_rejection_hints_checksum_off(code: str, message: str) -> None:
    err = translate(client_error(code, 400, message), WHERE)

    assert type(err) is StoreRejected
    assert message in str(err)
    assert "git config lfs-s3.checksum off" in str(err)


def test_unrelated_invalid_request_has_no_checksum_hint() -> None:
    err = translate(client_error("InvalidRequest", 400, "Missing required header"), WHERE)

    assert type(err) is StoreRejected
    assert "checksum" not in str(err)


def test_no_message_carries_signatures_headers_or_secrets() -> None:
    codes = [code for code, *_ in CASES] + ["EntityTooLarge", "InvalidRequest"]
    for code in codes:
        for status in (400, 403, 404, 500):
            message = str(translate(client_error(code, status), WHERE))
            _assert_no_secret(message)
            assert "REQ123" not in message
            assert "AKIAIOSFODNN7EXAMPLE" not in message


def _assert_no_secret(message: str) -> None:
    for leak in (SECRET, SIGNATURE, "aws_secret_access_key", "StringToSign", "authorization"):
        assert leak not in message, (leak, message)


@pytest.mark.parametrize(
    "exc",
    [
        NoCredentialsError(),
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
    ],
    ids=["none", "partial"],
)
def test_missing_credentials_is_access_denied_naming_aws_profile(exc: Exception) -> None:
    err = translate(exc, WHERE)

    assert type(err) is AccessDenied
    assert err.code == 403
    assert err.oid == OID
    assert "AWS_PROFILE" in str(err)
    assert "aws sso login" in str(err)
    assert URL in str(err)
    _assert_no_secret(str(err))


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/team-models/key"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/team-models/key"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9/team-models/key"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=["endpoint", "connect-timeout", "read-timeout", "reset"],
)
def test_network_failure_is_storage_unavailable_naming_the_endpoint(exc: Exception) -> None:
    err = translate(exc, WHERE)

    assert type(err) is StorageUnavailable
    assert err.code == 503
    assert err.oid == OID
    assert err.key == KEY
    assert f"cannot reach S3 at {ENDPOINT}" in str(err)
    assert URL in str(err)
    assert str(exc) in str(err)


def test_unexpected_exception_is_a_plain_transfer_error() -> None:
    err = translate(RuntimeError("boom"), WHERE)

    assert type(err) is TransferError
    assert err.code == 500
    assert "boom" in str(err)
    assert URL in str(err)


def test_transfer_error_passes_through_unchanged() -> None:
    original = CorruptObject("already ours", oid="other", key="elsewhere")

    assert translate(original, WHERE) is original


def test_where_url() -> None:
    assert WHERE.url == URL


def test_translated_chains_the_original_as_cause() -> None:
    original = client_error("NoSuchKey", 404)

    with pytest.raises(ObjectNotFound) as caught, translated(WHERE):
        raise original

    assert caught.value.__cause__ is original
    assert caught.value.oid == OID


def test_translated_lets_transfer_errors_through_untouched() -> None:
    original = StoreRejected("ours", oid=OID)

    with pytest.raises(StoreRejected) as caught, translated(WHERE):
        raise original

    assert caught.value is original
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3)], ids=["sigint", "exit"])
def test_translated_does_not_swallow_base_exceptions(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as caught, translated(WHERE):
        raise exc

    assert caught.value is exc


def test_translated_passes_a_quiet_block() -> None:
    ran = []
    with translated(WHERE):
        ran.append(True)

    assert ran == [True]
    assert issubclass(TransferError, AgentError)
    assert not issubclass(Interrupted, TransferError)


def test_translated_lets_interrupted_through() -> None:
    original = Interrupted("upload cancelled")

    with pytest.raises(Interrupted) as caught, translated(WHERE):
        raise original

    assert caught.value is original
