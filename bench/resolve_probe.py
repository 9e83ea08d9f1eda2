"""One application process resolving a published version from S3: `python -m bench.resolve_probe
SPEC ROOT CACHE_DIR [--again N]`. Prints JSON: the seconds the import of `registry` took, the
first `resolve` (cold with an empty cache dir, warm with a populated one) and N more resolves in
the same process (warm, in-process); the parent times the whole process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("root")
    parser.add_argument("cache_dir")
    parser.add_argument("--again", type=int, default=0)
    opts = parser.parse_args()
    start = time.perf_counter()
    from registry import resolve

    imported = time.perf_counter()
    model = resolve(opts.spec, root=opts.root, cache_dir=opts.cache_dir)
    first = time.perf_counter()
    again = []
    for _ in range(opts.again):
        t = time.perf_counter()
        resolve(opts.spec, root=opts.root, cache_dir=opts.cache_dir)
        again.append(time.perf_counter() - t)
    sizes = {name: path.stat().st_size for name, path in model.files.items()}
    print(
        json.dumps(
            {
                "import_s": imported - start,
                "first_s": first - imported,
                "again_s": again,
                "ref": str(model.ref),
                "sizes": sizes,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
