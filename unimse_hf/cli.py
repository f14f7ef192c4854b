# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""The `unimse` command line: `unimse predict` prints the prediction for a transcript and a clip."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

import numpy as np


def _load_features(path: Optional[str], name: str) -> Optional[np.ndarray]:
    if path is None:
        return None
    if not path.endswith(".npy"):
        raise SystemExit(f"--{name} must be a .npy file holding a (frames, dim) array, got {path!r}")
    return np.load(path, allow_pickle=False)


def predict(args: argparse.Namespace) -> dict:
    """Run a UniMSE checkpoint's pipeline on the given transcript and media or features.

    Without `--trust_remote_code` the checkpoint's Python files are never run: its weights load into
    this package's registered classes and this package's pipeline. With it, the checkpoint's own code
    (model, processor and pipeline modules) is imported and run.
    """
    from transformers import AutoConfig, pipeline

    from unimse_hf import PIPELINE_TASK, UniMSEPipeline  # registers UniMSE with the Auto classes

    trust = args.trust_remote_code
    model_type = AutoConfig.from_pretrained(args.model, revision=args.revision, trust_remote_code=trust).model_type
    if model_type != "unimse":
        raise ValueError(f"--model {args.model} is a {model_type!r} checkpoint, not a UniMSE one")
    pipe = pipeline(task=PIPELINE_TASK, model=args.model, revision=args.revision, trust_remote_code=trust,
                    pipeline_class=None if trust else UniMSEPipeline)
    inputs = {"text": args.text, "audio": args.audio, "video": args.video,
              "acoustic": _load_features(args.acoustic, "acoustic"), "visual": _load_features(args.visual, "visual")}
    return pipe({k: v for k, v in inputs.items() if v is not None}, return_emotion_scores=args.emotion_scores,
                return_modality_contributions=args.modality_contributions)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the `unimse` console script."""
    parser = argparse.ArgumentParser(prog="unimse", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("predict", help="predict sentiment and emotion for a transcript (+ audio/video)")
    run.add_argument("--model", required=True, help="checkpoint folder or Hub repo id")
    run.add_argument("--revision", default=None, help="pin the Hub revision (recommended with remote code)")
    run.add_argument("--trust_remote_code", action="store_true",
                     help="run the checkpoint's own Python files (off: this package's code loads the weights)")
    run.add_argument("--text", required=True, help="the transcript")
    run.add_argument("--audio", default=None, help="audio file (wav, mp3, ...); needs unimse-hf[media]")
    run.add_argument("--video", default=None, help="video file (mp4, ...); needs unimse-hf[media]")
    run.add_argument("--acoustic", default=None, help="precomputed acoustic frames (.npy, frames x dim)")
    run.add_argument("--visual", default=None, help="precomputed visual frames (.npy, frames x dim)")
    run.add_argument("--emotion_scores", action="store_true", help="also print each MELD emotion's probability")
    run.add_argument("--modality_contributions", action="store_true",
                     help="also print the prediction without each given modality and the differences")
    args = parser.parse_args(argv)
    json.dump(predict(args), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
