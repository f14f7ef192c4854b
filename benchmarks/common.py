# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Shared helpers of the UniMSE benchmarks: machine description, interleaved timing, Markdown results.

Every comparison is timed *side by side*: one round runs each candidate once (in a rotated order), and
the rounds repeat. The spread of a candidate is its interquartile range over the rounds; the spread of
a comparison is the IQR of the per-round ratios, which cancels most of the load drift of a shared
machine because both candidates of a round ran seconds apart.
"""

from __future__ import annotations

import gc
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def cpu_model_name() -> str:
    """The CPU model from /proc/cpuinfo (`model name`), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1/5/15-minute load averages as a string, or `unavailable`."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unavailable"


def machine_description() -> list[str]:
    """Markdown bullet lines describing this machine and software: cores, CPU, versions, threads, load."""
    import numpy
    import torch
    import transformers

    return [
        f"- CPU: {cpu_model_name()}; `nproc` = {os.cpu_count()}; torch threads = {torch.get_num_threads()}",
        f"- Load average (1, 5, 15 min) at start: {load_average()} (the machine is shared; see the IQRs)",
        f"- Python {platform.python_version()} on {platform.platform()}",
        f"- torch {torch.__version__}, transformers {transformers.__version__}, numpy {numpy.__version__}",
    ]


def exact_command() -> str:
    """The command line that started this process, as a shell-quoted string relative to the repository."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(REPO_ROOT))
    except ValueError:
        script_text = str(script)
    return " ".join(["python", shlex.quote(script_text), *(shlex.quote(arg) for arg in sys.argv[1:])])


@dataclass
class TimingSummary:
    """Seconds per call of one candidate over the interleaved rounds."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.samples)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartiles of the seconds per call."""
        return quartiles(self.samples)

    def describe(self, unit_scale: float = 1.0, digits: int = 3) -> str:
        """`median [q1, q3]` scaled by `unit_scale` (e.g. 1000 for milliseconds)."""
        low, high = self.quartiles
        return f"{self.median * unit_scale:.{digits}f} [{low * unit_scale:.{digits}f}, {high * unit_scale:.{digits}f}]"


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (inclusive method); a single value is its own quartiles."""
    if len(values) < 2:
        return (values[0], values[0])
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    return (first, third)


@dataclass
class RatioSummary:
    """Per-round ratios `numerator / denominator` of two interleaved candidates."""

    ratios: list[float]

    @property
    def median(self) -> float:
        """Median of the per-round ratios."""
        return statistics.median(self.ratios)

    def describe(self, digits: int = 3) -> str:
        """`median [q1, q3]` of the per-round ratios."""
        low, high = quartiles(self.ratios)
        return f"{self.median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


@dataclass
class CandidateTimings:
    """Wall-clock and CPU (`time.process_time`, all threads of this process) seconds per call of one candidate."""

    wall: TimingSummary = field(default_factory=TimingSummary)
    cpu: TimingSummary = field(default_factory=TimingSummary)

    def clock(self, name: str) -> TimingSummary:
        """The summary of clock `name` (`"wall"` or `"cpu"`)."""
        return self.wall if name == "wall" else self.cpu


def interleaved_timings(
    candidates: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup_rounds: int = 1,
    calls_per_sample: int = 1,
    collect_garbage: bool = True,
) -> dict[str, CandidateTimings]:
    """Time each candidate once per round, rotating the order every round; return seconds per call.

    Both clocks are recorded: wall time, and the CPU time of this process. On a machine shared with
    other jobs the CPU time of a single-threaded run measures the work itself; wall time also counts
    the time the scheduler gave to others. As `timeit` does, the garbage collector is off while a
    call is timed; with `collect_garbage` it runs once before every round (a full collection can take
    most of a second in a process holding torch and transformers, so short benchmarks turn it off).

    Args:
        candidates: name -> zero-argument callable doing one unit of work.
        rounds: number of timed rounds (each candidate runs `calls_per_sample` times per round).
        warmup_rounds: untimed rounds first (allocator, caches, lazy initialisation).
        calls_per_sample: calls timed together per sample (for very short calls); the sample is their mean.
        collect_garbage: run `gc.collect()` before each round.
    """
    names = list(candidates)
    summaries = {name: CandidateTimings() for name in names}
    for round_index in range(warmup_rounds + rounds):
        shift = round_index % len(names)
        if collect_garbage:
            gc.collect()
        for name in names[shift:] + names[:shift]:
            function = candidates[name]
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                wall_started, cpu_started = time.perf_counter(), time.process_time()
                for _ in range(calls_per_sample):
                    function()
                wall = (time.perf_counter() - wall_started) / calls_per_sample
                cpu = (time.process_time() - cpu_started) / calls_per_sample
            finally:
                if was_enabled:
                    gc.enable()
            if round_index >= warmup_rounds:
                summaries[name].wall.samples.append(wall)
                summaries[name].cpu.samples.append(cpu)
    return summaries


def ratio_of(summaries: Mapping[str, CandidateTimings], numerator: str, denominator: str,
             clock: str = "cpu") -> RatioSummary:
    """Per-round ratios of two candidates timed together by :func:`interleaved_timings`, on `clock`."""
    pairs = zip(summaries[numerator].clock(clock).samples, summaries[denominator].clock(clock).samples)
    return RatioSummary([top / bottom for top, bottom in pairs])


def set_thread_count(threads: int) -> int:
    """Set torch's intra-op thread count (0 = leave torch's default) and return the count in use."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A GitHub Markdown table as a list of lines."""
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


GOAL_PREFIX = "<!-- goal:"


def goal_comment(measurement: str, value: str, verdict: str) -> str:
    """An invisible Markdown line declaring a goal's outcome; `run_all.py` gathers them into the summary."""
    return f"{GOAL_PREFIX} {measurement} | {value} | {verdict} -->"


def write_result(name: str, title: str, body: Sequence[str], command: str | None = None,
                 started_at: float | None = None, machine: Sequence[str] | None = None) -> Path:
    """Write one result section to `benchmarks/results/<name>.md` and return its path.

    The section is a level-2 title, the exact command, the machine description and `body` (Markdown
    lines). `machine` defaults to :func:`machine_description` now; pass the one taken at the start so
    the load average is the one the measurements began with.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    lines = [f"## {title}", "", f"Command: `{command or exact_command()}` (run from the repository root)", ""]
    lines += list(machine if machine is not None else machine_description())
    if started_at is not None:
        lines.append(f"- Wall time of this script: {time.perf_counter() - started_at:.0f} s; "
                     f"load average at the end: {load_average()}")
    lines += ["", *body, ""]
    path = RESULTS_DIR / f"{name}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


__all__ = ["REPO_ROOT", "RESULTS_DIR", "TimingSummary", "RatioSummary", "cpu_model_name", "load_average",
           "machine_description", "exact_command", "interleaved_timings", "ratio_of", "CandidateTimings", "set_thread_count", "markdown_table",
           "write_result", "quartiles", "goal_comment", "GOAL_PREFIX"]
