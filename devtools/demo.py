"""`make demo`: the whole story on a local SeaweedFS S3 server, in a throw-away directory.

An ML engineer registers a model and pushes; an app developer clones; the files are compared
byte for byte. Nothing outside the temp directory is touched: git runs with a HOME of its own.
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

    def __call__(self, *args: str, cwd: Path, show: bool = True) -> str:
        if show:
            print(f"$ {' '.join(args)}", flush=True)
        proc = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True)
        out = (proc.stdout + proc.stderr).strip()
        if show and out:
            print("  " + out.replace("\n", "\n  "), flush=True)
        if proc.returncode != 0:
            raise SystemExit(f"demo failed: {' '.join(args)} exited with {proc.returncode}")
        return proc.stdout


def register_model(sh: Shell, repo: Path) -> dict[str, str]:
    version = repo / "YOLOX-l" / "base" / "1.2"
    version.mkdir(parents=True)
    (repo / "YOLOX-l" / "base" / "README.md").write_text(
        "# YOLOX-l base models\n\nInput 640x640 RGB; output boxes in pixels.\n"
    )
    (version / "config.yaml").write_text("model: YOLOX-l\ninput_size: [640, 640]\nepochs: 300\n")
    (version / "log.txt").write_text("epoch 300: mAP 0.497\n")
    (version / "checkpoint.pth").write_bytes(os.urandom(48 * MiB))
    (version / "checkpoint.onnx").write_bytes(os.urandom(12 * MiB))
    return {
        str(p.relative_to(repo)): sha256(p)
        for p in sorted((repo / "YOLOX-l").rglob("*"))
        if p.is_file()
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lfs-s3-demo-") as tmp:
        work = Path(tmp)
        say("Starting a local S3 server (SeaweedFS) on 127.0.0.1")
        with seaweedfs(work / "s3") as server:
            print(f"  endpoint {server.endpoint}, bucket '{BUCKET}'")
            server.create_bucket(BUCKET)
            home = work / "home"
            home.mkdir()
            sh = Shell(home, server)
            sh("git", "config", "--global", "user.name", "ML Engineer", cwd=work, show=False)
            sh(
                "git",
                "config",
                "--global",
                "user.email",
                "ml@example.invalid",
                cwd=work,
                show=False,
            )
            sh("git", "config", "--global", "init.defaultBranch", "main", cwd=work, show=False)
            sh("git", "lfs", "install", "--skip-repo", cwd=work, show=False)

            say("An ML engineer creates the registry and registers YOLOX-l/base/1.2")
            remote = work / "model-registry.git"
            sh("git", "init", "-q", "--bare", str(remote), cwd=work)
            repo = work / "model-registry"
            shutil.copytree(TEMPLATE, repo)
            (repo / ".lfsconfig").write_text(
                f"[lfs]\n\turl = https://lfs-s3.invalid/{BUCKET}/{PREFIX}\n"
            )
            sh("git", "init", "-q", cwd=repo)
            sh("lfs-s3-agent", "install", cwd=repo)
            files = register_model(sh, repo)
            sh("git", "add", "-A", cwd=repo)
            sh("git", "commit", "-q", "-m", "Register YOLOX-l/base/1.2", cwd=repo)
            sh("git", "remote", "add", "origin", str(remote), cwd=repo)
            start = time.monotonic()
            sh("git", "push", "-q", "origin", "main", cwd=repo)
            print(f"  pushed in {time.monotonic() - start:.1f} s")

            say("The objects in S3, at <prefix>/objects/<oid[0:2]>/<oid[2:4]>/<oid>")
            client = server.client()
            for obj in client.list_objects_v2(Bucket=BUCKET)["Contents"]:
                print(f"  s3://{BUCKET}/{obj['Key']}  {obj['Size']:>10} bytes")

            say("An app developer installs the agent once, then clones with plain git")
            sh("lfs-s3-agent", "install", "--global", cwd=work)
            clone = work / "app-developer" / "model-registry"
            clone.parent.mkdir()
            start = time.monotonic()
            sh("git", "clone", "-q", str(remote), str(clone), cwd=work)
            print(f"  cloned in {time.monotonic() - start:.1f} s")
            sh("git", "lfs", "fsck", cwd=clone)

            say("Comparing the clone with what was registered")
            same = True
            for name, digest in files.items():
                got = sha256(clone / name)
                mark = "identical" if got == digest else "DIFFERENT"
                same &= got == digest
                print(f"  {name:<40} {digest[:16]}  {mark}")
            if not same:
                print("\nDemo FAILED: the clone differs from what was pushed")
                return 1
            say("Stopping the S3 server")
        print("\nDemo OK: every file came back byte-identical through S3.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
