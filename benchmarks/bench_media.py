# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Speed of raw-media feature extraction (``unimse_hf.media``) on the two CMU-MOSI clips in the repo.

For each clip and stage it reports the median over ``--repeats`` runs of the CPU time
(``time.process_time``, all threads of the process) and the wall time, and the real-time factor
"seconds of media per second" for both. The first full extraction of each clip runs before the
repetitions and is reported separately as the warm-up: for the first clip it includes the lazy
imports, numba's cache load (or its ~35 s compilation in a new environment) and model set-up.

Usage (needs ``pip install "unimse-hf[media]"``)::

    python benchmarks/bench_media.py --repeats 5 --output benchmarks/results/media.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unimse_hf import media  # noqa: E402 - needs the path above

RAW = REPO / "data" / "mosi" / "raw"
CLIPS = {
    "03bSnISJMiM_1.wav": ("anyhow it was really good", {"audio": RAW / "03bSnISJMiM_1.wav"}),
    "Oz06ZWiO20M_6.mp4": (
        "and sucker punch is a failer but like a really ambitious weird the interesting idiosyncratic failure",
        {"video": RAW / "Oz06ZWiO20M_6.mp4"},
    ),
}
PACKAGES = ("av", "librosa", "numba", "mediapipe", "pocketsphinx", "numpy", "scipy")


def measure(function: Callable[[], object]) -> tuple[float, float]:
    """Return the (CPU seconds, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    return time.process_time() - cpu, time.perf_counter() - wall


def machine_description() -> list[str]:
    """Lines describing the CPU, the Python build and the package versions."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    versions = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    return [
        f"- CPU: {cpu_model}; `nproc` = {usable} (os.cpu_count() = {os.cpu_count()}); load average at start: {load}",
        f"- Python {platform.python_version()} on {platform.platform()}",
        f"- Packages: {versions}",
    ]


def benchmark_clip(text: str, sources: dict, repeats: int) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Return the median (CPU, wall) per stage, the clip's duration and its warm-up wall time."""
    warm_up = measure(lambda: media.extract_media_features(text, **sources))
    source = next(iter(sources.values()))
    waveform = media.decode_audio(source, argument_name="source")
    stages: dict[str, Callable[[], object]] = {
        "decode audio": lambda: media.decode_audio(source, argument_name="source"),
        "acoustic (librosa, incl. pYIN)": lambda: media.extract_acoustic_features(waveform),
    }
    if "video" in sources:
        stages["visual (decode + mediapipe)"] = lambda: media.extract_visual_features(sources["video"])
    stages["word alignment (pocketsphinx)"] = lambda: media.align_words(waveform, media.SAMPLING_RATE, text)
    stages["**total** (`extract_media_features`)"] = lambda: media.extract_media_features(text, **sources)
    medians = {}
    for name, function in stages.items():
        runs = [measure(function) for _ in range(repeats)]
        medians[name] = (statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs))
    duration = media.extract_media_features(text, align=False, **sources)["duration"]
    return medians, duration, warm_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per stage (median reported)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "media.md")
    args = parser.parse_args()

    lines = [
        "# Raw-media feature extraction speed (`unimse_hf.media`)",
        "",
        "Command: `python " + " ".join(shlex.quote(arg) for arg in sys.argv) + "`",
        "",
        *machine_description(),
        "",
        f"Median of {args.repeats} runs after one warm-up extraction per clip. CPU = `time.process_time()` "
        "(all threads; mediapipe runs several, so CPU can exceed wall); media s / s = clip duration divided "
        "by the time (higher is faster; above 1 is faster than real time).",
        "",
        "| clip | duration (s) | stage | CPU (s) | wall (s) | media s / CPU s | media s / wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    warm_ups = []
    for clip, (text, sources) in CLIPS.items():
        medians, duration, warm_up = benchmark_clip(text, sources, args.repeats)
        warm_ups.append(f"- {clip}: CPU {warm_up[0]:.2f} s, wall {warm_up[1]:.2f} s")
        for stage, (cpu, wall) in medians.items():
            speeds = f"{duration / cpu:.1f} | {duration / wall:.1f}"
            lines.append(f"| {clip} | {duration:.2f} | {stage} | {cpu:.3f} | {wall:.3f} | {speeds} |")
    lines += ["", "Warm-up (first full extraction of each clip in this process, not in the medians):", "", *warm_ups]
    report = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
