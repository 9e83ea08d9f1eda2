"""The registry's pull-request check: `python release_report.py BASE_REV [REPORT.md]`.

Run in the registry checkout (copy this file next to the workflow, or to the repository's
root). It runs the same commands a person would:

1. `model-registry check --against BASE_REV`: released versions are unchanged;
2. `model-registry gate REF` for every version added since BASE_REV;
3. `model-registry compare PREVIOUS REF --format markdown` for each, into REPORT.md.

Exit 0 when the check is clean and every gate passes, 1 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from registry.repo import layout
from registry.repo.gitrepo import GitRepo


def added_versions(base: str) -> list[str]:
    """The versions at HEAD that BASE does not have."""
    repo = GitRepo.discover(Path.cwd())
    before = {str(r) for r in layout.scan(layout.TreeSource(repo, base)).refs()}
    return [
        str(r) for r in layout.scan(layout.TreeSource(repo, "HEAD")).refs() if str(r) not in before
    ]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    print("$ " + " ".join(args), flush=True)
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    print(proc.stdout + proc.stderr, end="", flush=True)
    return proc


def main(base: str, report: Path) -> int:
    lines = ["## Model registry", ""]
    status = 0
    check = run("model-registry", "check", "--against", base)
    if check.returncode != 0:
        status = 1
        lines += ["**check failed:**", "", "```", check.stdout.strip(), "```", ""]
    added = added_versions(base)
    if not added:
        lines.append("No new versions.")
    for ref in added:
        gate = run("model-registry", "gate", ref, "--format", "json")
        if gate.returncode == 2:  # no gate for this scope: compare only
            verdict, against = "no gate", None
        else:
            result = json.loads(gate.stdout)
            against = result["against"]
            verdict = "passes" if result["passed"] else "**FAILS**"
            if not result["passed"]:
                status = 1
                failed = [c["detail"] for c in result["checks"] if not c["passed"]]
                lines += [f"- {ref}: {d}" for d in failed]
        lines += ["", f"{ref}: gate {verdict}", ""]
        if against:
            compare = run("model-registry", "compare", against, ref, "--format", "markdown")
            lines += [compare.stdout.strip(), ""]
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "registry-report.md")))
