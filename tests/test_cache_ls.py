"""`cache ls` has a header row and a last-use column; counts agree with their noun (issue 13,
findings 8 and 9)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from devtools.s3servers import S3Bucket
from registry import resolve
from registry.cache import Cache
from registry.cli import cli
from tests.s3releases import publish_by_hand, url


def test_cache_ls_has_a_header_and_the_last_use(
    moto_s3: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in moto_s3.server.env().items():
        monkeypatch.setenv(key, value)
    publish_by_hand(moto_s3, {"YOLOX-l/base/1.0": {"checkpoint.pth": b"weights" * 100}})
    model = resolve("base/1.0", root=url(moto_s3), cache_dir=tmp_path)
    oid = model.objects["checkpoint.pth"].oid
    used = Cache(tmp_path).last_used(oid)
    assert used is not None

    result = CliRunner().invoke(cli, ["cache", "ls", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["OID", "SIZE", "LAST", "USE", "VERSIONS"]
    when = datetime.datetime.fromtimestamp(used).strftime("%Y-%m-%d %H:%M")
    assert row.split(maxsplit=4)[:4] == [oid[:16], "700", *when.split()]
    assert "YOLOX-l/base/1.0" in row
    assert result.stderr == f"1 object, 700 bytes in {tmp_path}\n"

    pruned = CliRunner().invoke(cli, ["cache", "prune", "--cache-dir", str(tmp_path)])
    assert pruned.stdout == f"removed 1 object from {tmp_path}\n"
