"""An application loading its model through the registry: `python load_model.py [CONFIG]`.

`resolve` picks the newest version the selector allows and returns local paths of its files:
from S3 alone into a verified cache when root_url is s3://... (no git needed; offline with
MODEL_REGISTRY_OFFLINE=1 once cached), or from a registry checkout, pulling them if needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from registry import resolve


def load(config_path: Path) -> dict[str, Path]:
    config = yaml.safe_load(config_path.read_text())["model"]["detection2d"]
    root_url = str(config["root_url"])
    root = root_url if "://" in root_url else str((config_path.parent / root_url).resolve())
    model = resolve(config["version"], root=root)
    print(f"{config['version']} -> {model.ref} (commit {(model.commit or '-')[:12]})")
    for name, path in model.files.items():
        print(f"  {name:<16} {path.stat().st_size:>12,} bytes  {path}")
    return dict(model.files)


if __name__ == "__main__":
    load(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("config.yaml"))
