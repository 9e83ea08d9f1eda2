"""An application loading its model through the registry: `python load_model.py [CONFIG]`.

`resolve` picks the newest version the selector allows, pulls its files if they are still
LFS pointers, and returns their paths.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from registry import resolve


def load(config_path: Path) -> dict[str, Path]:
    config = yaml.safe_load(config_path.read_text())["model"]["detection2d"]
    root = (config_path.parent / config["root_url"]).resolve()
    model = resolve(config["version"], root=root)
    print(f"{config['version']} -> {model.ref} (commit {(model.commit or '-')[:12]})")
    for name, path in model.files.items():
        print(f"  {name:<16} {path.stat().st_size:>12,} bytes  {path}")
    return dict(model.files)


if __name__ == "__main__":
    load(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("config.yaml"))
