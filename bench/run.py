"""`make bench`: the agent against boto3, the AWS CLI and raw presigned HTTP on a local SeaweedFS.

Everything runs on 127.0.0.1 against one SeaweedFS server, same data, same run. Contenders
alternate within each round (A B C A B C ..., and a different one goes first each round), so the
machine's drift hits all of them alike; medians and min-max are reported, with ratios against
the baseline of each operation (the raw presigned PUT/GET for one large object, the AWS CLI for
many small files, boto3 for the remote resolve).

Sections (all by default; `--only large,small` picks some):

- large: one checkpoint (1 GiB): `git push` through the real git-lfs and the agent, boto3
  `upload_file`, `aws s3 cp`, a raw presigned PUT; `git lfs fetch` and `git lfs pull` into an
  empty object store, boto3 `download_file`, `aws s3 cp`, a raw presigned GET.
- small: 1,000 files of 100 KiB: `git push` / `git lfs fetch` / `git lfs pull` of a repository
  holding them, next to `aws s3 cp --recursive` both ways.
- startup: the init round trip of one agent process, and a whole `git lfs pull` of one small
  object (next to one `aws s3 cp` of it).
- memory: peak RSS of the agent processes (each logs it at exit) moving 1 GiB (from `large`)
  and 4 GiB (one push and one fetch; the data is generated and deleted after).
- resolve: cold and warm `registry.resolve` of a published 1 GiB model from S3, next to boto3
  `download_file` of the same object.
- registry: resolve and check on a generated registry of 2,000 versions (bench/registry_bench).

Results: bench/results/latest.md, latest.json and the chart latest.png.

    python -m bench.run [--size-mib 1024] [--rounds 3] [--small-count 1000] [--big-mib 4096]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.s3servers import seaweedfs
from lfs_agent.warm import ENV_SWITCH as WARM_SWITCH

from . import peer_bench, registry_bench, startup
from .common import (
    BIN,
    BUCKET,
    SCRATCH,
    MiB,
    Results,
    World,
    rotate,
    settle,
    timed,
    write_data,
)
from .contenders import AwsCli, RawHttp, aws_version, ensure_awscli
from .report import write_report

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

SECTIONS = ("large", "small", "peer", "startup", "memory", "resolve", "registry")
PUSH = "git push (agent)"
FETCH = "git lfs fetch (agent)"
PULL = "git lfs pull (agent)"


def oid_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def object_key(prefix: str, oid: str) -> str:
    return f"{prefix}/objects/{oid[0:2]}/{oid[2:4]}/{oid}"


class Bench:
    def __init__(self, opts: argparse.Namespace, root: Path, world: World) -> None:
        self.opts = opts
        self.root = root
        self.world = world
        self.server = world.server
        self.client = self.server.client()
        self.results = Results()
        self.aws = AwsCli(opts.aws, world.env) if opts.aws else None
        self.raw = RawHttp(self.server.client(signature_version="s3v4"), BUCKET, tool=opts.raw)
        self.data: Path | None = None

    # -- helpers --------------------------------------------------------------------------

    def checkpoint(self) -> Path:
        """The large data file, generated once and shared by the sections that need it."""
        if self.data is None:
            self.data = self.root / "checkpoint.bin"
            write_data(self.data, self.opts.size_mib * MiB)
        return self.data

    def push(self, repo: Path, remote: Path, prefix: str) -> float:
        self.world.git("init", "-q", "--bare", str(remote))
        return timed(
            self.world.git, "push", "-q", str(remote), "main", cwd=repo,
            env={"LFS_S3_PREFIX": prefix},
        )  # fmt: skip

    def lfs(self, command: str, clone: Path, prefix: str) -> float:
        return timed(self.world.git, "lfs", command, cwd=clone, env={"LFS_S3_PREFIX": prefix})

    def delete_prefix(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix):
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": o["Key"]} for o in page.get("Contents", [])
            ]
            if keys:
                self.client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})

    # -- sections -------------------------------------------------------------------------

    def large(self) -> None:
        opts, world, res = self.opts, self.world, self.results
        size = opts.size_mib * MiB
        label = f"{opts.size_mib} MiB" if opts.size_mib < 1024 else f"{opts.size_mib / 1024:g} GiB"
        print(f"== large: one object of {label}", flush=True)
        data = self.checkpoint()
        repo = world.new_repo(self.root / "large", "large")
        os.link(data, repo / "checkpoint.bin")
        world.git("add", "-A", cwd=repo)
        world.git("commit", "-q", "-m", "checkpoint", cwd=repo)
        up = res.group("up", f"upload {label}", baseline=f"raw presigned PUT ({self.raw.name})")
        down = res.group(
            "down", f"download {label}", baseline=f"raw presigned GET ({self.raw.name})"
        )
        out = self.root / "download.bin"
        clones: list[Path] = []

        def one_round(rnd: int) -> None:
            print(f"round {rnd + 1}/{opts.rounds}", flush=True)
            prefix = f"large{rnd}"

            def git_push() -> None:
                up.add(PUSH, self.push(repo, self.root / f"large{rnd}.git", prefix))
                res.add_rss(f"push {label}", world.peak_rss())

            uploads = [
                git_push,
                lambda: up.add(
                    "boto3 upload_file",
                    timed(self.client.upload_file, str(data), BUCKET, f"boto3/{prefix}"),
                ),
                lambda: up.add(up.baseline, timed(self.raw.put, data, f"raw/{prefix}")),
            ]
            if self.aws:
                aws = self.aws
                uploads.append(
                    lambda: up.add(
                        "aws s3 cp", timed(aws.cp, str(data), f"s3://{BUCKET}/aws/{prefix}")
                    )
                )
            for fn in rotate(uploads, rnd):
                settle()
                fn()
            if not clones:
                clones.append(world.clone(self.root / f"large{rnd}.git", self.root / "large-clone"))
            cl = clones[0]

            def git_fetch() -> None:
                world.empty_lfs(cl, ["checkpoint.bin"])
                settle()
                down.add(FETCH, self.lfs("fetch", cl, prefix))
                res.add_rss(f"fetch {label}", world.peak_rss())

            def git_pull() -> None:
                world.empty_lfs(cl, ["checkpoint.bin"])
                settle()
                down.add(PULL, self.lfs("pull", cl, prefix))
                res.add_rss(f"pull {label}", world.peak_rss())
                assert (cl / "checkpoint.bin").stat().st_size == size

            def boto3_get() -> None:
                out.unlink(missing_ok=True)
                settle()
                key = f"boto3/{prefix}"
                down.add("boto3 download_file", timed(self.client.download_file, BUCKET, key, out))
                assert out.stat().st_size == size

            def raw_get() -> None:
                out.unlink(missing_ok=True)
                settle()
                down.add(down.baseline, timed(self.raw.get, f"raw/{prefix}", out))
                assert out.stat().st_size == size

            def aws_get() -> None:
                assert self.aws
                out.unlink(missing_ok=True)
                settle()
                down.add("aws s3 cp", timed(self.aws.cp, f"s3://{BUCKET}/aws/{prefix}", str(out)))
                assert out.stat().st_size == size

            downloads = [git_fetch, git_pull, boto3_get, raw_get]
            if self.aws:
                downloads.append(aws_get)
            for fn in rotate(downloads, rnd):
                fn()
            out.unlink(missing_ok=True)
            # Keep the server's disk small: each round wrote the object once per contender.
            for name in ("", "boto3/", "raw/", "aws/"):
                self.delete_prefix(f"{name}{prefix}")

        for rnd in range(opts.rounds):
            one_round(rnd)

    def small(self) -> None:
        opts, world, res = self.opts, self.world, self.results
        n, kib = opts.small_count, opts.small_kib
        print(f"== small: {n} files of {kib} KiB", flush=True)
        files = self.root / "small-files"
        files.mkdir()
        for i in range(n):
            (files / f"f{i:05d}.bin").write_bytes(os.urandom(kib * 1024))
        repo = world.new_repo(self.root / "small", "small")
        shutil.copytree(files, repo / "files", copy_function=os.link)
        world.git("add", "-A", cwd=repo)
        world.git("commit", "-q", "-m", "small files", cwd=repo)
        names = [f"files/{p.name}" for p in files.iterdir()]
        title = f"{n} x {kib} KiB"
        up = res.group("small-up", f"upload {title}", baseline="aws s3 cp --recursive")
        down = res.group("small-down", f"download {title}", baseline="aws s3 cp --recursive")
        clones: list[Path] = []

        def one_round(rnd: int) -> None:
            print(f"round {rnd + 1}/{opts.rounds}", flush=True)
            prefix = f"small{rnd}"

            def git_push() -> None:
                up.add(PUSH, self.push(repo, self.root / f"small{rnd}.git", prefix))
                res.add_rss(f"push {title}", world.peak_rss())

            def aws_up() -> None:
                assert self.aws
                dest = f"s3://{BUCKET}/aws/{prefix}/"
                up.add(up.baseline, timed(self.aws.cp, str(files), dest, recursive=True))

            for fn in rotate([git_push, aws_up] if self.aws else [git_push], rnd):
                settle()
                fn()
            if not clones:
                clones.append(world.clone(self.root / f"small{rnd}.git", self.root / "small-clone"))
            cl = clones[0]
            out = self.root / "small-out"

            def git_fetch() -> None:
                world.empty_lfs(cl)
                settle()
                down.add(FETCH, self.lfs("fetch", cl, prefix))
                res.add_rss(f"fetch {title}", world.peak_rss())

            def git_pull() -> None:
                world.empty_lfs(cl, names)
                settle()
                down.add(PULL, self.lfs("pull", cl, prefix))
                res.add_rss(f"pull {title}", world.peak_rss())
                assert (cl / names[0]).stat().st_size == kib * 1024

            def aws_down() -> None:
                assert self.aws
                shutil.rmtree(out, ignore_errors=True)
                settle()
                source = f"s3://{BUCKET}/aws/{prefix}/"
                down.add(down.baseline, timed(self.aws.cp, source, str(out), recursive=True))
                assert len(list(out.iterdir())) == n

            for fn in rotate([git_fetch, git_pull, aws_down] if self.aws else [git_fetch], rnd):
                fn()
            shutil.rmtree(out, ignore_errors=True)
            self.delete_prefix(prefix)
            self.delete_prefix(f"aws/{prefix}")

        for rnd in range(opts.rounds):
            one_round(rnd)

    def peer(self) -> None:
        peer_bench.run(self)
        if self.opts.size_mib:
            self.results.facts[f"git-lfs verification pass, {self.opts.size_mib} MiB (s)"] = (
                peer_bench.verification_pass(self.world, self.checkpoint())
            )

    def startup(self) -> None:
        opts, world, res = self.opts, self.world, self.results
        print("== startup", flush=True)
        repo = world.new_repo(self.root / "tiny", "tiny")
        (repo / "tiny.bin").write_bytes(os.urandom(1024))
        world.git("add", "-A", cwd=repo)
        world.git("commit", "-q", "-m", "tiny", cwd=repo)
        self.push(repo, self.root / "tiny.git", "tiny")
        clone = world.clone(self.root / "tiny.git", self.root / "tiny-clone")
        oid = oid_of(repo / "tiny.bin")
        request: dict[str, object] = {"event": "download", "oid": oid, "size": 1024}
        init = res.group("init", "agent start to init reply", "warm server", unit="ms")
        first = res.group("first", "first request, 1 KiB download", "credentials in env", "ms")
        queue = res.group("queue", "start of one transfer queue", "1 process (default)", "ms")
        cold = {WARM_SWITCH: "0"}
        profile = startup.profile_env(self.root, world)
        for _ in range(5 * opts.rounds):
            init.add("warm server", startup.session(world, clone, {}, None)[0])
            init.add("no warm server", startup.session(world, clone, cold, None)[0])
            first.add("credentials in env", startup.first(world, clone, {}, request))
            first.add("env, no warm server", startup.first(world, clone, cold, request))
            first.add(
                "profile (botocore chain)", startup.session(world, clone, profile, request)[1]
            )
        for _ in range(opts.rounds):
            queue.add("1 process (default)", startup.queue_start(world, clone, {}, 1))
            queue.add("8 processes (--concurrent)", startup.queue_start(world, clone, {}, 8))
            queue.add("8 processes, no warm server", startup.queue_start(world, clone, cold, 8))
        tiny = res.group("tiny", "one small object, whole command", baseline=PULL)
        for rnd in range(opts.rounds):

            def git_pull() -> None:
                world.empty_lfs(clone, ["tiny.bin"])
                tiny.add(PULL, self.lfs("pull", clone, "tiny"))

            def aws_get() -> None:
                assert self.aws
                out = self.root / "tiny.out"
                out.unlink(missing_ok=True)
                source = f"s3://{BUCKET}/{object_key('tiny', oid)}"
                tiny.add("aws s3 cp (one object)", timed(self.aws.cp, source, str(out)))

            for fn in rotate([git_pull, aws_get] if self.aws else [git_pull], rnd):
                settle(0.5)
                fn()

    def memory(self) -> None:
        opts, world, res = self.opts, self.world, self.results
        if not opts.big_mib:
            return
        label = f"{opts.big_mib / 1024:g} GiB"
        print(f"== memory: one object of {label}, one push and one fetch", flush=True)
        repo = world.new_repo(self.root / "huge", "huge")
        write_data(repo / "huge.bin", opts.big_mib * MiB)
        world.git("add", "-A", cwd=repo)
        world.git("commit", "-q", "-m", "huge", cwd=repo)
        (repo / "huge.bin").unlink()
        world.peak_rss()
        settle()
        res.facts[f"git push {label} (s)"] = self.push(repo, self.root / "huge.git", "huge")
        res.add_rss(f"push {label}", world.peak_rss())
        shutil.rmtree(repo)
        clone = world.clone(self.root / "huge.git", self.root / "huge-clone")
        settle()
        res.facts[f"git lfs fetch {label} (s)"] = self.lfs("fetch", clone, "huge")
        res.add_rss(f"fetch {label}", world.peak_rss())
        shutil.rmtree(clone)
        self.delete_prefix("huge")

    def resolve(self) -> None:
        opts, world, res = self.opts, self.world, self.results
        print("== resolve: a published 1-checkpoint model, from S3", flush=True)
        data = self.checkpoint()
        reg = world.new_repo(self.root / "model-registry", "reg", patterns=["*.pth"])
        version = reg / "YOLOX-l" / "base" / "1.0"
        version.mkdir(parents=True)
        (reg / "YOLOX-l" / "base" / "README.md").write_text("# YOLOX-l base\n\nBench model.\n")
        (version / "config.yaml").write_text("model: YOLOX-l\nversion: '1.0'\n")
        (version / "log.txt").write_text("bench\n")
        os.link(data, version / "checkpoint.pth")
        world.git("add", "-A", cwd=reg)
        world.git("commit", "-q", "-m", "YOLOX-l/base/1.0", cwd=reg)
        world.run([str(BIN / "model-registry"), "check"], cwd=reg)
        res.facts["model-registry publish, 1 version (s)"] = timed(
            world.run, [str(BIN / "model-registry"), "publish", "--quiet", "--allow-unpushed"], reg
        )
        spec, root = "YOLOX-l/base/1.0", f"s3://{BUCKET}/reg"
        key = object_key("reg", oid_of(data))
        size = data.stat().st_size
        cold = res.group("cold", "cold resolve (empty cache)", baseline="boto3 download_file")
        warm = res.group("warm", "warm resolve (cache populated)", baseline="in-process", unit="ms")
        out = self.root / "download.bin"

        def one_round(rnd: int) -> None:
            cache = self.root / f"cache{rnd}"

            def cold_resolve() -> None:
                shutil.rmtree(cache, ignore_errors=True)
                settle()
                start = time.perf_counter()
                probe = self.probe(spec, root, cache, again=5)
                whole = time.perf_counter() - start
                cold.add("resolve (the call)", probe["first_s"])
                cold.add("resolve (whole process)", whole)
                assert probe["sizes"]["checkpoint.pth"] == size, probe
                for s in probe["again_s"]:
                    warm.add("in-process", s * 1000)
                start = time.perf_counter()
                again = self.probe(spec, root, cache)
                warm.add("fresh process (the call)", again["first_s"] * 1000)
                warm.add(
                    "fresh process (whole, Python start incl.)",
                    (time.perf_counter() - start) * 1000,
                )

            def boto3_get() -> None:
                out.unlink(missing_ok=True)
                settle()
                cold.add(cold.baseline, timed(self.client.download_file, BUCKET, key, str(out)))

            for fn in rotate([cold_resolve, boto3_get], rnd):
                fn()
            shutil.rmtree(cache, ignore_errors=True)
            out.unlink(missing_ok=True)

        for rnd in range(opts.rounds):
            one_round(rnd)
        self.delete_prefix("reg")

    def probe(self, spec: str, root: str, cache: Path, again: int = 0) -> dict[str, Any]:
        out = self.world.run(
            [sys.executable, "-m", "bench.resolve_probe", spec, root, str(cache)]
            + ["--again", str(again)],
            cwd=Path(__file__).resolve().parent.parent,
        )
        result: dict[str, Any] = json.loads(out)
        return result

    def registry(self) -> None:
        print("== registry: 2,000 generated versions", flush=True)
        made, rows = registry_bench.measure(self.opts.versions, 15)
        self.results.notes.append(f"generated registry: {sum(made.values())} versions ({made})")
        self.registry_rows = rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the large object (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each section (3)")
    parser.add_argument("--small-count", type=int, default=1000, help="small files (1000)")
    parser.add_argument("--small-kib", type=int, default=100, help="size of each (100 KiB)")
    parser.add_argument(
        "--big-mib", type=int, default=4096, help="memory check object (4096; 0: skip)"
    )
    parser.add_argument("--versions", type=int, default=2000, help="generated registry (2000)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"of {','.join(SECTIONS)}")
    parser.add_argument("--raw", choices=("auto", "curl", "python"), default="auto")
    parser.add_argument("--no-aws", action="store_true", help="leave the AWS CLI out")
    parser.add_argument(
        "--latency-ms", type=float, default=30, help="round trip added in the peer section (30)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results basename (bench/results/latest)"
    )
    opts = parser.parse_args(argv)
    opts.sections = [s for s in opts.only.split(",") if s]
    unknown = set(opts.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.perf_counter()
    needs_aws = {"large", "small", "startup"} & set(opts.sections)
    opts.aws = None if opts.no_aws or not needs_aws else ensure_awscli()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=SCRATCH) as tmp:
        root = Path(tmp)
        with seaweedfs(root / "s3") as server:
            server.create_bucket(BUCKET)
            world = World(root, server)
            bench = Bench(opts, root, world)
            versions = {"aws": aws_version(opts.aws, world.env) if opts.aws else "-"}
            for section in SECTIONS:
                if section in opts.sections:
                    getattr(bench, section)()
    elapsed = time.perf_counter() - started
    write_report(
        bench.results,
        opts,
        elapsed=elapsed,
        versions=versions,
        raw_tool=bench.raw.name,
        registry_rows=getattr(bench, "registry_rows", None),
    )
    print(f"bench took {elapsed / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
