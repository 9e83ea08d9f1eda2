"""What a version records about itself, and what is reasoned from it.

- `record`: a version's `meta.yaml` (metrics and provenance); `provenance`: what `add` can see;
  `yank`: `yanks.yaml`, the versions withdrawn and why; `recordcheck`: their checks.
- `compare`, `gate`, `history`: metrics of versions side by side, a promotion gate, a trend.
"""
