"""model-registry: a model registry that is a Git repository with its checkpoints in Git LFS."""

from __future__ import annotations

__all__: list[str] = []
