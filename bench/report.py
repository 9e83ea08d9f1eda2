"""The results of `bench.run`: bench/results/latest.md, latest.json and the chart latest.png."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from lfs_agent.config import AgentConfig

from .common import BIN, RESULTS, Group, Results, summary
from .peer_bench import AGENT, AGENT_MANY
from .registry_bench import Row

PUSH = "git push (agent)"
FETCH = "git lfs fetch (agent)"
PULL = "git lfs pull (agent)"


def _first_line(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return "-"
    return ((proc.stdout or proc.stderr).strip().splitlines() or ["-"])[0]


def machine(versions: dict[str, str], raw_tool: str) -> list[str]:
    cpu = "?"
    mem = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    import boto3
    import botocore

    weed = BIN / "weed"
    return [
        f"- machine: {cpu}, {os.cpu_count()} cores, {mem}; {platform.platform()}",
        f"- Python {platform.python_version()}, {_first_line(['git', '--version'])}, "
        f"{_first_line(['git', 'lfs', 'version'])}",
        f"- boto3 {boto3.__version__} / botocore {botocore.__version__} (project venv); "
        f"AWS CLI: {versions.get('aws', '-')} (its own venv); raw HTTP: {raw_tool}"
        + (f" ({_first_line(['curl', '--version']).split(' (')[0]})" if raw_tool == "curl" else ""),
        f"- server: SeaweedFS `weed mini` ({_first_line([str(weed), 'version'])}) on "
        "127.0.0.1, auth on, same machine as the clients (it competes for the 2 cores)",
    ]


def agent_defaults() -> str:
    defaults = AgentConfig(bucket="-")
    shown = []
    for name in AgentConfig._fields:
        if name in ("part_size", "multipart_threshold", "concurrency", "max_connections"):
            value = getattr(defaults, name)
            text = f"{value // (1024 * 1024)} MiB" if "size" in name or "thr" in name else value
            shown.append(f"{name.replace('_', '-')} {text}")
        elif name == "checksum":
            shown.append(f"checksum {defaults.checksum}")
    return ", ".join(shown)


def _mbs(group: Group, contender: str, size_mib: int) -> str:
    if group.unit != "s" or not size_mib:
        return ""
    return f"{size_mib * 1.048576 / group.median(contender):.0f}"


def _target_rows(res: Results, size_label: str, big_label: str) -> list[str]:
    g = res.groups
    rows: list[str] = []

    def add(target: str, measured: str, ok: bool) -> None:
        rows.append(f"| {target} | {measured} | {'met' if ok else '**missed**'} |")

    def ratio(key: str, contender: str, against: str | None = None) -> float | None:
        group = g.get(key)
        if group is None or contender not in group.values:
            return None
        other = against or group.baseline
        if other not in group.values:
            return None
        return group.ratio(contender, other)

    checks = [
        ("up", PUSH, "boto3 upload_file", 1.0, f"{size_label} git push <= 1.0x boto3 upload_file"),
        ("up", PUSH, None, 1.2, f"{size_label} git push <= 1.2x raw presigned PUT"),
        ("down", FETCH, None, 1.3, f"(transfer only) {size_label} git lfs fetch <= 1.3x raw GET"),
        ("small-up", PUSH, None, 1.0, "small files: git push no slower than aws s3 cp"),
        ("small-down", FETCH, None, 1.0, "(transfer only) small files: git lfs fetch vs aws"),
        ("cold", "resolve (the call)", None, 1.0, "cold remote resolve <= 1.0x boto3 download"),
    ]
    # The transfer core issue's milestone: against git-lfs's own HTTP path (bench/peer_bench).
    peer = [
        ("peer10-archive", 3.0, "git archive of 10 objects (one queue each) <= 3x the peer"),
        ("peer10-up", 2.0, "push 10 small objects <= 2x the peer"),
        ("peer10-down", 2.0, "fetch 10 small objects <= 2x the peer"),
        ("peer-many-up", 1.0, "push many small objects <= 1.0x the peer"),
        ("peer-many-down", 1.0, "fetch many small objects <= 1.0x the peer"),
        ("peer-large-up", 1.0, f"push {size_label} <= 1.0x the peer"),
        ("peer-large-down", 1.0, f"fetch {size_label} <= 1.0x the peer"),
        ("peer1-up", 1.0, "(goal) push 1 small object no slower than the peer"),
        ("peer1-down", 1.0, "(goal) fetch 1 small object no slower than the peer"),
        ("peer10-up", 1.0, "(goal) push 10 small objects no slower than the peer"),
        ("peer10-down", 1.0, "(goal) fetch 10 small objects no slower than the peer"),
        ("peer10-archive", 1.0, "(goal) git archive of 10 objects no slower than the peer"),
        ("peer-slow-up", 1.0, "(goal) push many small, added latency, no slower than the peer"),
        ("peer-slow-down", 1.0, "(goal) fetch many small, added latency, no slower than the peer"),
    ]
    for key, contender, against, limit, text in checks:
        r = ratio(key, contender, against)
        if r is not None:
            add(text, f"{r:.2f}x", r <= limit)
    for key, limit, text in peer:
        r = ratio(key, AGENT)
        if r is not None:
            add(text, f"{r:.2f}x", r <= limit)
    slow = g.get("peer-slow-up"), g.get("peer-slow-down")
    for group in slow:
        if group is not None and AGENT_MANY in group.values:
            r = group.ratio(AGENT_MANY)
            add(f"(setting) {group.title}: --concurrent vs the peer", f"{r:.2f}x", r <= 1.0)
    verify = next((v for k, v in res.facts.items() if k.startswith("git-lfs verification")), None)
    down = g.get("down")
    if (
        verify is not None
        and down
        and FETCH in down.values
        and "boto3 download_file" in down.values
    ):
        bound = down.median("boto3 download_file") + verify
        r = down.median(FETCH) / bound
        add(
            f"{size_label} git lfs fetch <= boto3 download_file + git-lfs's verification pass "
            f"({verify:.2f} s)",
            f"{r:.2f}x",
            r <= 1.0,
        )
    if "queue" in g and "1 process (default)" in g["queue"].values:
        ms = g["queue"].median("1 process (default)")
        add(
            "start of one transfer queue (every worker answered init) <= 300 ms",
            f"{ms:.0f} ms",
            ms <= 300,
        )
        if "8 processes (--concurrent)" in g["queue"].values:
            ms = g["queue"].median("8 processes (--concurrent)")
            add("(setting) the same with --concurrent, 8 processes", f"{ms:.0f} ms", ms <= 300)
    if "first" in g and "credentials in env" in g["first"].values:
        ms = g["first"].median("credentials in env")
        add("first request: set-up and a 1 KiB GET <= 100 ms", f"{ms:.0f} ms", ms <= 100)
    if "init" in g and "warm server" in g["init"].values:
        ms = g["init"].median("warm server")
        add("init round trip < 100 ms", f"{ms:.0f} ms", ms < 100)
    if res.rss:
        peak = max(max(v) for v in res.rss.values())
        add("peak RSS of an agent process < 150 MiB", f"{peak:.0f} MiB", peak < 150)
        for op in ("push", "fetch"):
            small = res.rss.get(f"{op} {size_label}")
            big = res.rss.get(f"{op} {big_label}")
            if small and big:
                a, b = max(small), max(big)
                # "The same": within 10% (allocator noise), i.e. memory does not grow with size.
                add(
                    f"{op}: peak RSS the same at {size_label} and {big_label}",
                    f"{a:.0f} / {b:.0f} MiB",
                    b <= a * 1.1,
                )
    if "warm" in g:
        for contender in ("in-process", "fresh process (the call)"):
            if contender in g["warm"].values:
                ms = g["warm"].median(contender)
                add(f"warm resolve < 50 ms ({contender})", f"{ms:.1f} ms", ms < 50)
    return rows


def write_report(
    res: Results,
    opts: argparse.Namespace,
    *,
    elapsed: float,
    versions: dict[str, str],
    raw_tool: str,
    registry_rows: list[Row] | None,
) -> None:
    out = opts.out or RESULTS / "latest"
    size_label = f"{opts.size_mib} MiB" if opts.size_mib < 1024 else f"{opts.size_mib / 1024:g} GiB"
    big_label = f"{opts.big_mib / 1024:g} GiB"
    lines = [
        "# Benchmarks: lfs-s3-agent and the registry on SeaweedFS (loopback)",
        "",
        f"`python -m bench.run {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        f"took {elapsed / 60:.1f} min. {opts.rounds} rounds; in each round the contenders "
        "alternate and a different one goes first. Seconds unless noted: median (min-max).",
        "",
        *machine(versions, raw_tool),
        f"- agent settings: defaults ({agent_defaults()}); git-lfs defaults "
        "(lfs.concurrenttransfers 8)",
        "",
    ]
    targets = _target_rows(res, size_label, big_label)
    if targets:
        lines += [
            "## Targets (ratios within this run)",
            "",
            "| target | measured | |",
            "|---|---|---|",
        ]
        lines += targets + [""]
    for key, group in res.groups.items():
        size_mib = opts.size_mib if key in ("up", "down") else 0
        lines += [f"## {group.title}", ""]
        head = f"| contender | {group.unit} | vs {group.baseline} |"
        sep = "|---|---|---|"
        if size_mib:
            head += " MB/s |"
            sep += "---|"
        lines += [head, sep]
        for contender, values in group.values.items():
            digits = 1 if group.unit == "ms" else 2
            row = f"| {contender} | {summary(values, digits)} | {group.ratio(contender):.2f}x |"
            if size_mib:
                row += f" {_mbs(group, contender, size_mib)} |"
            lines.append(row)
        lines.append("")
    if res.rss:
        lines += [
            "## Peak RSS of the agent processes (MiB, largest of the workers)",
            "",
            "| operation | MiB |",
            "|---|---|",
        ]
        lines += [f"| {k} | {summary(v, 1)} |" for k, v in res.rss.items()]
        lines.append("")
    if res.facts:
        lines += ["## Single runs", "", "| operation | value |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in res.facts.items()]
        lines.append("")
    if registry_rows:
        lines += [
            "## Registry, in-process (milliseconds)",
            "",
            *(f"- {note}" for note in res.notes),
            "",
            "| operation | median ms | min-max | target |",
            "|---|---|---|---|",
        ]
        for name, ms, target in registry_rows:
            lines.append(
                f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f}-{max(ms):.1f} | {target} |"
            )
        lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = out.with_suffix(".png")
    if draw_chart(res, chart):
        lines += [f"![benchmark chart]({chart.name})", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    data = {
        "argv": sys.argv[1:],
        "elapsed_s": elapsed,
        "groups": {k: asdict(g) for k, g in res.groups.items()},
        "rss": res.rss,
        "facts": res.facts,
        "registry": [list(r) for r in registry_rows or []],
    }
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print("\n".join(lines))


def draw_chart(res: Results, path: Path) -> bool:
    """Horizontal bars per contender (median, min-max whiskers), one panel per operation, each
    bar annotated with its ratio to the operation's baseline. False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no chart", flush=True)
        return False
    groups = [g for g in res.groups.values() if len(g.values) > 1 or g.unit == "ms"]
    if not groups:
        return False
    cols = 2
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 2.6 * rows), squeeze=False)
    for ax, group in zip(axes.flat, groups, strict=False):
        names = list(group.values)
        meds = [group.median(n) for n in names]
        lows = [m - min(group.values[n]) for m, n in zip(meds, names, strict=True)]
        highs = [max(group.values[n]) - m for m, n in zip(meds, names, strict=True)]
        others = ("boto3", "aws", "raw")
        colors = ["#7f7f7f" if n.startswith(others) else "#d62728" for n in names]
        ypos = list(range(len(names)))
        ax.barh(ypos, meds, xerr=[lows, highs], color=colors, capsize=3)
        ax.set_yticks(ypos, labels=names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{group.title} ({group.unit}, lower is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        top = max(m + h for m, h in zip(meds, highs, strict=True))
        ax.set_xlim(0, top * 1.25)
        for y, (n, m, h) in enumerate(zip(names, meds, highs, strict=True)):
            label = f"{m:.2f}" if group.unit == "s" else f"{m:.1f}"
            if group.baseline in group.values and len(names) > 1:
                label += f"  {group.ratio(n):.2f}x"
            ax.text(m + h + top * 0.02, y, label, va="center", fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle(
        "ours (red) vs others (grey), SeaweedFS on 127.0.0.1: median, min-max, ratio to baseline"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
