"""parse_request and encode: tables of protocol lines, as git-lfs sends and expects them."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lfs_agent.errors import ProtocolError
from lfs_agent.protocol import (
    Complete,
    Download,
    Init,
    InitReply,
    Progress,
    Reply,
    Request,
    Terminate,
    Upload,
    encode,
    parse_request,
)

OID = "0123456789abcdef" * 4
OID_JSON = json.dumps(OID)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            '{"event":"init","operation":"upload","remote":"origin","concurrent":true,'
            '"concurrenttransfers":3}',
            Init(operation="upload", remote="origin", concurrent=True, concurrent_transfers=3),
            id="init-full",
        ),
        pytest.param(
            '{"event":"init","operation":"download"}',
            Init(operation="download", remote="", concurrent=True, concurrent_transfers=8),
            id="init-without-remote-and-concurrenttransfers",
        ),
        pytest.param(
            '{"event":"init","operation":"download","remote":"https://git.example.com/r.git"}',
            Init(operation="download", remote="https://git.example.com/r.git"),
            id="init-remote-is-a-url",
        ),
        pytest.param(
            '{"event":"init","operation":"upload","remote":null,"concurrent":false}',
            Init(operation="upload", remote="", concurrent=False),
            id="init-remote-null-not-concurrent",
        ),
        pytest.param(
            '{"event":"init","operation":"upload","concurrenttransfers":0}',
            Init(operation="upload", concurrent_transfers=1),
            id="init-concurrenttransfers-zero-becomes-one",
        ),
        pytest.param(
            '{"event":"init","operation":"upload","concurrenttransfers":"8"}',
            Init(operation="upload", concurrent_transfers=1),
            id="init-concurrenttransfers-string-becomes-one",
        ),
        pytest.param(
            '{"event":"init","operation":"upload","concurrenttransfers":true}',
            Init(operation="upload", concurrent_transfers=1),
            id="init-concurrenttransfers-bool-becomes-one",
        ),
        pytest.param(
            '{"event":"upload","oid":' + OID_JSON + ',"size":42,'
            '"path":"/repo/.git/lfs/objects/01/23/' + OID + '","action":null}',
            Upload(oid=OID, size=42, path=f"/repo/.git/lfs/objects/01/23/{OID}"),
            id="upload",
        ),
        pytest.param(
            '{"event":"upload","oid":' + OID_JSON + ',"size":0,"path":"/tmp/empty"}',
            Upload(oid=OID, size=0, path="/tmp/empty"),
            id="upload-empty-without-action",
        ),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":7,"action":null}',
            Download(oid=OID, size=7),
            id="download-action-null",
        ),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":' + str(5 * 2**40) + "}",
            Download(oid=OID, size=5 * 2**40),
            id="download-5TiB",
        ),
        pytest.param('{"event":"terminate"}', Terminate(), id="terminate"),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":7,"action":null,'
            '"future":{"nested":[1,2]},"path":"/ignored"}',
            Download(oid=OID, size=7),
            id="unknown-fields-ignored",
        ),
        pytest.param(
            '{"event":"terminate","reason":"done"}', Terminate(), id="terminate-extra-field"
        ),
        pytest.param(
            '  {"event": "download", "oid": ' + OID_JSON + ', "size": 7}  \r\n',
            Download(oid=OID, size=7),
            id="whitespace-and-crlf",
        ),
    ],
)
def test_parse_request_accepts(line: str, expected: Request) -> None:
    assert parse_request(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("not json", "not a JSON line", id="invalid-json"),
        pytest.param("", "not a JSON line", id="empty"),
        pytest.param('{"event":"init"', "not a JSON line", id="truncated"),
        pytest.param("[1, 2]", "expected a JSON object", id="array"),
        pytest.param('"init"', "expected a JSON object", id="string"),
        pytest.param("null", "expected a JSON object", id="null"),
        pytest.param("42", "expected a JSON object", id="number"),
        pytest.param('{"event":"frobnicate"}', "unknown event 'frobnicate'", id="unknown-event"),
        pytest.param("{}", "unknown event None", id="no-event"),
        pytest.param('{"event":"INIT","operation":"upload"}', "unknown event", id="event-case"),
        pytest.param('{"event":"init"}', "init with unknown operation", id="init-no-operation"),
        pytest.param(
            '{"event":"init","operation":"push"}', "unknown operation 'push'", id="init-bad-op"
        ),
        pytest.param(
            '{"event":"download","oid":"' + OID.upper() + '","size":1}',
            "invalid oid",
            id="oid-uppercase",
        ),
        pytest.param(
            '{"event":"download","oid":"' + OID[:63] + '","size":1}',
            "invalid oid",
            id="oid-63-chars",
        ),
        pytest.param(
            '{"event":"download","oid":"' + OID + '0","size":1}', "invalid oid", id="oid-65-chars"
        ),
        pytest.param(
            '{"event":"download","oid":"' + "g" * 64 + '","size":1}',
            "invalid oid",
            id="oid-not-hex",
        ),
        pytest.param(
            '{"event":"download","oid":"' + OID + '\\n","size":1}',
            "invalid oid",
            id="oid-trailing-newline",
        ),
        pytest.param('{"event":"download","size":1}', "invalid oid None", id="oid-missing"),
        pytest.param('{"event":"download","oid":123,"size":1}', "invalid oid 123", id="oid-int"),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":-1}',
            "invalid size -1",
            id="size-negative",
        ),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":true}',
            "invalid size True",
            id="size-bool",
        ),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":"12"}',
            "invalid size '12'",
            id="size-string",
        ),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + ',"size":1.5}',
            "invalid size 1.5",
            id="size-float",
        ),
        pytest.param(
            '{"event":"download","oid":' + OID_JSON + "}", "invalid size None", id="size-missing"
        ),
        pytest.param(
            '{"event":"upload","oid":' + OID_JSON + ',"size":1}',
            "upload request without a path",
            id="upload-no-path",
        ),
        pytest.param(
            '{"event":"upload","oid":' + OID_JSON + ',"size":1,"path":""}',
            "upload request without a path",
            id="upload-empty-path",
        ),
        pytest.param(
            '{"event":"upload","oid":' + OID_JSON + ',"size":1,"path":null}',
            "upload request without a path",
            id="upload-null-path",
        ),
        pytest.param(
            '{"event":"upload","oid":"bad","size":-1,"path":"/x"}',
            "invalid oid 'bad'",
            id="upload-oid-checked-first",
        ),
    ],
)
def test_parse_request_rejects(line: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)) as info:
        parse_request(line)
    assert info.value.code == 2


def test_parse_request_error_quotes_the_line_clipped() -> None:
    line = '{"event":"download","oid":"x","size":1,"pad":"' + "z" * 5000 + '"}'
    with pytest.raises(ProtocolError) as info:
        parse_request(line)
    message = str(info.value)
    assert '{"event":"download","oid":"x"' in message
    assert "..." in message
    assert len(message) < 500


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            Progress(oid=OID, bytes_so_far=10, bytes_since_last=4),
            '{"event":"progress","oid":"' + OID + '","bytesSoFar":10,"bytesSinceLast":4}\n',
            id="progress",
        ),
        pytest.param(
            Complete(oid=OID),
            '{"event":"complete","oid":"' + OID + '"}\n',
            id="complete",
        ),
        pytest.param(
            Complete(oid=OID, path="/repo/.git/lfs/tmp/x-1"),
            '{"event":"complete","oid":"' + OID + '","path":"/repo/.git/lfs/tmp/x-1"}\n',
            id="complete-with-path",
        ),
        pytest.param(
            Complete(oid=OID, error_code=404, error_message="object not found"),
            '{"event":"complete","oid":"'
            + OID
            + '","error":{"code":404,"message":"object not found"}}\n',
            id="complete-with-error",
        ),
        pytest.param(
            Complete(oid=OID, error_code=500),
            '{"event":"complete","oid":"' + OID + '","error":{"code":500,"message":""}}\n',
            id="complete-error-without-message",
        ),
        pytest.param(InitReply(), "{}\n", id="init-ok"),
        pytest.param(
            InitReply(error_code=32, error_message="no bucket"),
            '{"error":{"code":32,"message":"no bucket"}}\n',
            id="init-error",
        ),
    ],
)
def test_encode_exact(reply: Reply, expected: str) -> None:
    assert encode(reply) == expected


NON_ASCII = "données perdues – 模型 ✓\nsecond line\u2028and \x00 a NUL"


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Complete(oid=OID, error_code=403, error_message=NON_ASCII), id="message"),
        pytest.param(Complete(oid=OID, path="/tmp/répertoire/模型\n.bin"), id="path"),
        pytest.param(InitReply(error_code=32, error_message=NON_ASCII), id="init-error"),
    ],
)
def test_encode_non_ascii_is_one_ascii_line(reply: Reply) -> None:
    line = encode(reply)
    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert line.isascii()
    msg = json.loads(line)
    if isinstance(reply, Complete) and reply.path is not None:
        assert msg["path"] == reply.path
    else:
        assert msg["error"]["message"] == NON_ASCII


@given(
    oid=st.text(min_size=1, max_size=70),
    text=st.text(),
    code=st.integers(min_value=0, max_value=999),
    so_far=st.integers(min_value=0, max_value=2**50),
)
def test_encode_any_reply_is_one_json_line(oid: str, text: str, code: int, so_far: int) -> None:
    replies: list[Reply] = [
        Progress(oid, so_far, so_far),
        Complete(oid, path=text),
        Complete(oid, error_code=code, error_message=text),
        InitReply(error_code=code, error_message=text),
    ]
    for reply in replies:
        line = encode(reply)
        assert line.endswith("\n") and line.count("\n") == 1 and line.isascii()
        msg = json.loads(line)
        assert isinstance(msg, dict)
        if not isinstance(reply, InitReply):
            assert msg["oid"] == oid


@pytest.mark.parametrize("line", ["[" * 100_000, '{"a":' * 100_000])
def test_deeply_nested_line_is_a_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        parse_request(line)
