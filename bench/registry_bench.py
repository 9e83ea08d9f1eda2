"""Registry speed on a generated registry of 2,000 version folders (in-process, after imports).

    python -m bench.registry_bench [--versions 2000] [--repeat 15]

Times `resolve` of an exact version and of selectors, `check` of the whole registry, and the
`model-registry check` command as a process. Checkpoints are committed as LFS pointer files
(no objects are needed to measure the registry). Writes bench/results/registry.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from registry import check, resolve
from registry.repo.gitrepo import GitRepo
from registry.repo.layout import CheckoutSource
from registry.repo.pointer import LfsPointer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def pointer(seed: str, size: int) -> str:
    return LfsPointer(oid=hashlib.sha256(seed.encode()).hexdigest(), size=size).text()


def generate(root: Path, count: int) -> dict[str, int]:
    """`count` version folders over 10 models: base X.Y, projectA X.Y.Z, pretrained dates."""
    made = {"base": 0, "projectA": 0, "pretrained": 0}
    (root / ".gitattributes").write_text(
        "*.pth filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    )
    per_model = count // 10
    for m in range(10):
        model = f"Model{m}-l"
        for scope in ("base", "projectA", "pretrained"):
            (root / model / scope).mkdir(parents=True)
            (root / model / scope / "README.md").write_text(f"# {model} {scope}\n")
        for i in range(per_model):
            if i % 10 < 5:
                scope, version = "base", f"{i // 10}.{i % 10}"
            elif i % 10 < 9:
                scope, version = "projectA", f"{i // 10}.0.{i % 10}"
            else:
                scope, version = "pretrained", f"20{10 + i // 120:02d}-{1 + (i // 10) % 12:02d}-01"
            folder = root / model / scope / version
            folder.mkdir()
            (folder / "config.yaml").write_text(f"model: {model}\nlr: 0.01\nepochs: {i}\n")
            (folder / "log.txt").write_text(f"epoch {i}: mAP 0.5\n")
            (folder / "checkpoint.pth").write_text(pointer(f"{model}{scope}{version}", 10**8))
            (folder / "checkpoint.onnx").write_text(pointer(f"{model}{scope}{version}o", 10**8))
            made[scope] += 1
    return made


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def line(name: str, ms: list[float], target: str) -> str:
    return f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f}-{max(ms):.1f} | {target} |"


Row = tuple[str, list[float], str]


def measure(versions: int, repeat: int) -> tuple[dict[str, int], list[Row]]:
    """Milliseconds of each operation on a generated registry: (what was made, rows)."""
    saved = {k: os.environ.get(k) for k in ("GIT_CONFIG_NOSYSTEM", "HOME")}
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        root = Path(tmp) / "registry"
        root.mkdir()
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": tmp}
        subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
        made = generate(root, versions)
        # Routed to lfs-s3, as `model-registry init` leaves it: what makes a folder a registry.
        (root / ".lfsconfig").write_text("[lfs]\n\turl = https://lfs-s3.invalid/bench/registry\n")
        git = ["git", "-c", "user.name=b", "-c", "user.email=b@b"]
        subprocess.run([*git, "add", "-A"], cwd=root, check=True, env=env)
        subprocess.run([*git, "commit", "-qm", "registry"], cwd=root, check=True, env=env)
        # As after `git lfs pull`: pointers committed, the checkpoints' bytes in the checkout.
        for path in root.glob("*/*/*/checkpoint.*"):
            path.write_bytes(os.urandom(2048))
        os.environ.update(GIT_CONFIG_NOSYSTEM="1", HOME=tmp)
        try:
            rows = _measure(root, env, sum(made.values()), repeat)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return made, rows


def _measure(root: Path, env: dict[str, str], total: int, repeat: int) -> list[Row]:
    assert resolve("Model3-l/base/4.2", root).ref.version is not None
    rows: list[Row] = [
        (
            "resolve exact `Model3-l/base/4.2`",
            timed(lambda: resolve("Model3-l/base/4.2", root), repeat),
            "< 50 ms",
        ),
        (
            "resolve selector `Model3-l/base/4`",
            timed(lambda: resolve("Model3-l/base/4", root), repeat),
            "< 50 ms",
        ),
        (
            "resolve selector `Model3-l/projectA/latest`",
            timed(lambda: resolve("Model3-l/projectA/latest", root), repeat),
            "< 50 ms",
        ),
    ]
    repo = GitRepo.discover(root)
    findings: list[object] = []

    def run_check() -> None:
        findings[:] = check(CheckoutSource(root), repo=repo)

    rows.append(
        (
            f"check, whole registry ({total} versions)",
            timed(run_check, max(3, repeat // 3)),
            "< 2000 ms",
        )
    )
    assert findings == [], findings[:3]
    cli = str(Path(sys.executable).parent / "model-registry")
    rows.append(
        (
            "`model-registry check` (process, incl. start-up)",
            timed(
                lambda: subprocess.run(
                    [cli, "check", str(root)], check=True, capture_output=True, env=env
                ),
                3,
            ),
            "-",
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    opts = parser.parse_args()
    made, measured = measure(opts.versions, opts.repeat)
    total = sum(made.values())
    rows = [line(*row) for row in measured]
    text = "\n".join(
        [
            "# Registry speed (in-process unless noted; milliseconds)",
            "",
            f"- generated registry: {total} version folders ({made}), 4 files each, 10 models",
            f"- {opts.repeat} runs each; median and min-max",
            "",
            "| operation | median ms | min-max | target |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "registry.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
