"""`make demo`: the whole story on a local SeaweedFS S3 server, in a throw-away directory.

An ML engineer creates a registry, registers models (`model-registry add`, `check`) and pushes;
an app developer clones with plain git and resolves a version; the engineer publishes, and an
application on a host with no git resolves "base/1" from S3 alone into a verified cache, then
again offline. Before that, the release gate passes one version and fails a regressed one, and
a yank moves "base/1" back, on the checkout and in S3. Every file is compared byte for byte
with what was registered. Nothing outside the temp directory is touched: git runs with a HOME
of its own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.s3servers import S3Server, seaweedfs

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "examples" / "registry-template"
BUCKET = "models"
PREFIX = "model-registry"
MiB = 1024 * 1024


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Shell:
    def __init__(self, home: Path, server: S3Server) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "LFS_S3_"))}
        self.env.update(server.env())
        self.env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"

    def __call__(self, *args: str, cwd: Path, show: bool = True, check: bool = True) -> str:
        if show:
            shown = [Path(a).name if a == sys.executable else a for a in args]
            print(f"$ {' '.join(shown)}", flush=True)
        proc = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True)
        out = (proc.stdout + proc.stderr).strip()
        if show and out:
            print("  " + out.replace("\n", "\n  "), flush=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"demo failed: {' '.join(args)} exited with {proc.returncode}")
        return proc.stdout


def release_gate(sh: Shell, repo: Path, work: Path) -> None:
    """Records, the gate (one pass, one fail) and a yank that moves base/1, then publish."""
    say("Before production: each version's record, and the release gate (model-registry.toml)")
    sh("model-registry", "show", "YOLOX-l/base/1.2", cwd=repo)
    sh("model-registry", "gate", "YOLOX-l/base/1.2", cwd=repo)
    sh("model-registry", "history", "YOLOX-l/base", cwd=repo)

    say("A new training run, base/1.3, is registered: its mAP regressed, and the gate says so")
    from make_registry import make_run

    run = work / "runs" / "base-1.3"
    make_run(run, "YOLOX-l", "base/1.3", 64 * 1024, (0.391, 31.0, "2.1.1"))
    sh("model-registry", "add", "YOLOX-l/base/1.3", "--from", str(run), cwd=repo)
    sh("git", "commit", "-q", "-m", "Register YOLOX-l/base/1.3", cwd=repo)
    failed = sh("model-registry", "gate", "YOLOX-l/base/1.3", cwd=repo, check=False)
    if "FAILS" not in failed:
        raise SystemExit("demo failed: the gate passed a regressed model")
    sh("model-registry", "compare", "YOLOX-l/base/1.2", "YOLOX-l/base/1.3", cwd=repo)

    say("It was released by mistake: yank it, and base/1 moves back to 1.2")
    sh("model-registry", "resolve", "YOLOX-l/base/1", "--no-fetch", cwd=repo)
    sh("model-registry", "yank", "YOLOX-l/base/1.3", "--reason", "mAP regressed", cwd=repo)
    sh("git", "commit", "-q", "-m", "Yank YOLOX-l/base/1.3", cwd=repo)
    moved = sh("model-registry", "resolve", "YOLOX-l/base/1", "--no-fetch", cwd=repo)
    if not moved.startswith("YOLOX-l/base/1.2 "):
        raise SystemExit("demo failed: base/1 did not skip the yanked 1.3")
    sh("model-registry", "list", "YOLOX-l", cwd=repo)
    sh("git", "push", "-q", "origin", "main", cwd=repo)
    sh("model-registry", "publish", "--quiet", cwd=repo)
    sh("model-registry", "list", "--root-url", f"s3://{BUCKET}/{PREFIX}/YOLOX-l", cwd=work)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lfs-s3-demo-") as tmp:
        work = Path(tmp)
        say("Starting a local S3 server (SeaweedFS) on 127.0.0.1")
        with seaweedfs(work / "s3") as server:
            print(f"  endpoint {server.endpoint}, bucket '{BUCKET}'")
            server.create_bucket(BUCKET)
            sh = _shell(work, server)
            remote = work / "model-registry.git"
            repo = work / "model-registry"
            files = _register(sh, work, remote, repo)
            release_gate(sh, repo, work)
            _show_objects(server)
            clone = _app_developer(sh, work, remote)
            host = _production_host(sh, work)
            different = _compare(files, clone, host)
            if different:
                print("\nDemo FAILED: these files differ: " + ", ".join(different))
                return 1
            say("Stopping the S3 server")
        print("\nDemo OK: every file came back byte-identical through S3.")
        return 0


def _shell(work: Path, server: S3Server) -> Shell:
    """A shell with a HOME of its own, git's identity and git-lfs's filters set up."""
    home = work / "home"
    home.mkdir()
    sh = Shell(home, server)
    for key, value in (
        ("user.name", "ML Engineer"),
        ("user.email", "ml@example.invalid"),
        ("init.defaultBranch", "main"),
    ):
        sh("git", "config", "--global", key, value, cwd=work, show=False)
    sh("git", "lfs", "install", "--skip-repo", cwd=work, show=False)
    return sh


def _register(sh: Shell, work: Path, remote: Path, repo: Path) -> dict[str, str]:
    """The ML engineer's part: a registry, its versions, a push and a publish; the SHA-256 of
    every registered file, by path."""
    say("An ML engineer creates the registry and registers models")
    sh("git", "init", "-q", "--bare", str(remote), cwd=work)
    sh("model-registry", "init", str(repo), "--bucket", BUCKET, "--prefix", PREFIX, cwd=work)
    sys.path.insert(0, str(ROOT / "examples"))
    from make_registry import main as make_registry

    print("  (examples/make_registry.py: 'model-registry add' for 11 versions)")
    make_registry(repo, size=6 * MiB, env=sh.env)
    sh("model-registry", "next", "YOLOX-l/base", "--minor", cwd=repo)
    source = str(repo / "YOLOX-l" / "base" / "1.1")
    sh("model-registry", "add", "YOLOX-l/base/1.2", "--from", source, cwd=repo, check=False)
    sh("model-registry", "check", cwd=repo)
    sh("model-registry", "list", cwd=repo)
    sh("git", "commit", "-q", "-m", "Register models", cwd=repo)
    sh("git", "remote", "add", "origin", str(remote), cwd=repo)
    start = time.monotonic()
    sh("git", "push", "-q", "origin", "main", cwd=repo)
    print(f"  pushed in {time.monotonic() - start:.1f} s")
    sh("model-registry", "publish", "--quiet", cwd=repo)
    return {
        str(p.relative_to(repo)): sha256(p)
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def _show_objects(server: S3Server) -> None:
    say("The objects in S3, at <prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>")
    listing = server.client().list_objects_v2(Bucket=BUCKET)["Contents"]
    for obj in listing[:3]:
        print(f"  s3://{BUCKET}/{obj['Key']}  {obj['Size']:>10} bytes")
    print(f"  ... {len(listing)} objects")


def _app_developer(sh: Shell, work: Path, remote: Path) -> Path:
    """An app developer: the agent installed once, a plain clone, a version resolved."""
    say("An app developer installs the agent once, clones, and loads a model")
    sh("lfs-s3-agent", "install", "--global", cwd=work)
    app_root = work / "app-developer"
    clone = app_root / "model-registry"
    app_root.mkdir()
    start = time.monotonic()
    sh("git", "clone", "-q", str(remote), str(clone), cwd=work)
    print(f"  cloned in {time.monotonic() - start:.1f} s")
    sh("git", "lfs", "fsck", cwd=clone)
    sh("model-registry", "resolve", "YOLOX-l/projectA/1.2", cwd=clone)
    return clone


def _production_host(sh: Shell, work: Path) -> Path:
    """A host with no git: the app resolves its model from S3, then again offline."""
    say("A production host: no git, no clone; the app's config names the S3 release")
    host = work / "production-host"
    shutil.copytree(ROOT / "examples" / "app", host / "app")
    print("  " + (host / "app" / "config.yaml").read_text().strip().replace("\n", "\n  "))
    sh.env["MODEL_REGISTRY_CACHE"] = str(host / "cache")
    sh(sys.executable, str(host / "app" / "load_model.py"), cwd=host)
    say("Again offline: S3 unreachable, the verified cache answers")
    sh.env.update(MODEL_REGISTRY_OFFLINE="1", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    sh(sys.executable, str(host / "app" / "load_model.py"), cwd=host)
    return host


def _compare(files: dict[str, str], clone: Path, host: Path) -> list[str]:
    """The registered files that came back different, through the clone or from S3."""
    say("Comparing the clone with what was registered")
    different = [name for name, digest in files.items() if sha256(clone / name) != digest]
    cached = host / "cache" / "versions" / BUCKET / PREFIX / "YOLOX-l" / "base" / "1.2"
    served = {f"YOLOX-l/base/1.2/{p.name}": sha256(p) for p in cached.iterdir()}
    different += [name for name, digest in served.items() if files[name] != digest]
    print(
        f"  {len(served)} files resolved from S3 on the production host: "
        + ("identical" if all(files[n] == d for n, d in served.items()) else "DIFFERENT")
    )
    print(f"  {len(files) - len(different)} of {len(files)} files byte-identical")
    return different


if __name__ == "__main__":
    sys.exit(main())
