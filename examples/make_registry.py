"""Generate a small, realistic registry to try the tools on: `python make_registry.py DIR`.

Two models; base, pretrained and project versions; tiny random "checkpoints" (nothing binary
is committed to this project). Uses the registry's own `add`, as an ML engineer would. Each
version has a record (`meta.yaml`: latency, dataset, hardware; its mAP comes from log.txt
through `[metrics.patterns]`), and `model-registry.toml` sets a release gate on YOLOX-l/base.
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
# version -> (mAP written in log.txt, latency in ms, dataset schema version)
RESULTS = {
    "base/0.1": (0.301, 35.0, "1.0.0"),
    "base/1.0": (0.383, 32.0, "2.0.0"),
    "base/1.1": (0.398, 31.0, "2.1.0"),
    "base/1.2": (0.402, 31.5, "2.1.1"),
}
SETTINGS = """\
[metrics.patterns]
mAP = 'final mAP ([0-9.]+)'

[check]
meta = ["metrics.mAP", "dataset.schema_version"]

[gate."YOLOX-l/base"]
min = { mAP = 0.35 }
max = { latency_ms = 40 }
max_regression = { mAP = 0.005, latency_ms = 2.0 }
lower_is_better = ["latency_ms"]
"""
SCOPE_README = {
    "pretrained": "Pretrained on a large public dataset; starting points for base models.",
    "base": "General-purpose models. Input: RGB image. X changes when the app must change.",
}


def make_run(
    folder: Path, model: str, version: str, size: int, result: tuple[float, float, str]
) -> None:
    """A training run's output folder: what `model-registry add --from` takes."""
    mean_ap, latency, dataset = result
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"model: {model}\nversion: {version}\nepochs: 300\n")
    (folder / "log.txt").write_text(
        f"{model} {version}\nepoch 150 mAP 0.2\n{model} {version}: final mAP {mean_ap}\n"
    )
    (folder / "meta.yaml").write_text(
        "schema: 1\n"
        f"metrics: {{latency_ms: {latency}}}\n"
        "hardware: {gpu: NVIDIA A100-SXM4-80GB, count: 8}\n"
        f"dataset: {{name: coco-vehicles, schema_version: '{dataset}'}}\n"
    )
    (folder / "checkpoint.pth").write_bytes(os.urandom(size))
    (folder / "checkpoint.onnx").write_bytes(os.urandom(size // 2))


def main(dest: Path, size: int = 256 * 1024, env: dict[str, str] | None = None) -> None:
    cli = [sys.executable, "-m", "registry"]
    (dest / "model-registry.toml").write_text(SETTINGS)
    subprocess.run(["git", "add", "model-registry.toml"], cwd=dest, check=True, env=env)
    with tempfile.TemporaryDirectory() as tmp:
        for model, versions in VERSIONS.items():
            for spec in versions:
                run = Path(tmp) / model / spec
                make_run(run, model, spec, size, RESULTS.get(spec, (0.39, 33.0, "2.1.0")))
                subprocess.run(
                    [*cli, "add", f"{model}/{spec}", "--from", str(run), "--root", str(dest),
                     "--no-detect-gpu"],
                    check=True,
                )  # fmt: skip
                scope = spec.split("/")[0]
                readme = dest / model / scope / "README.md"
                if not readme.exists():
                    text = SCOPE_README.get(scope, f"Fine-tuned for {scope}'s cameras.")
                    readme.write_text(f"# {model} {scope}\n\n{text}\n")
                    subprocess.run(["git", "add", str(readme)], cwd=dest, check=True, env=env)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
