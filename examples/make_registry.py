"""Generate a small, realistic registry to try the tools on: `python make_registry.py DIR`.

Two models; base, pretrained and project versions; tiny random "checkpoints" (nothing binary
is committed to this project). Uses the registry's own `add`, as an ML engineer would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

VERSIONS = {
    "YOLOX-l": [
        "pretrained/2024-03-01",
        "base/0.1",
        "base/1.0",
        "base/1.1",
        "base/1.2",
        "projectA/1.1.0",
        "projectA/1.2.0",
        "projectA/1.2.1",
    ],
    "SegFormer-b0": ["base/1.0", "base/2.0", "projectB/2.0.0"],
}
SCOPE_README = {
    "pretrained": "Pretrained on a large public dataset; starting points for base models.",
    "base": "General-purpose models. Input: RGB image. X changes when the app must change.",
}


def make_run(folder: Path, model: str, version: str, size: int) -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"model: {model}\nversion: {version}\nepochs: 300\n")
    (folder / "log.txt").write_text(f"{model} {version}: final mAP 0.{len(version)}7\n")
    (folder / "checkpoint.pth").write_bytes(os.urandom(size))
    (folder / "checkpoint.onnx").write_bytes(os.urandom(size // 2))


def main(dest: Path, size: int = 256 * 1024, env: dict[str, str] | None = None) -> None:
    cli = [sys.executable, "-m", "registry"]
    with tempfile.TemporaryDirectory() as tmp:
        for model, versions in VERSIONS.items():
            for spec in versions:
                run = Path(tmp) / model / spec
                make_run(run, model, spec, size)
                subprocess.run(
                    [*cli, "add", f"{model}/{spec}", "--from", str(run), "--root", str(dest)],
                    check=True,
                )
                scope = spec.split("/")[0]
                readme = dest / model / scope / "README.md"
                if not readme.exists():
                    text = SCOPE_README.get(scope, f"Fine-tuned for {scope}'s cameras.")
                    readme.write_text(f"# {model} {scope}\n\n{text}\n")
                    subprocess.run(["git", "add", str(readme)], cwd=dest, check=True, env=env)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
