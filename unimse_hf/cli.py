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
    """Run the checkpoint's pipeline on the given transcript and media or features."""
    from transformers import AutoConfig, pipeline

    import unimse_hf  # noqa: F401  (registers the pipeline task for local checkpoints)

    model_type = AutoConfig.from_pretrained(args.model, revision=args.revision, trust_remote_code=True).model_type
    if model_type != "unimse":
        raise ValueError(f"--model {args.model} is a {model_type!r} checkpoint, not a UniMSE one")
    pipe = pipeline(task="multimodal-sentiment-analysis", model=args.model, revision=args.revision,
                    trust_remote_code=True)
    inputs = {"text": args.text, "audio": args.audio, "video": args.video,
              "acoustic": _load_features(args.acoustic, "acoustic"), "visual": _load_features(args.visual, "visual")}
    return pipe({k: v for k, v in inputs.items() if v is not None}, return_emotion_scores=args.emotion_scores)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the `unimse` console script."""
    parser = argparse.ArgumentParser(prog="unimse", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("predict", help="predict sentiment and emotion for a transcript (+ audio/video)")
    run.add_argument("--model", required=True, help="checkpoint folder or Hub repo id")
    run.add_argument("--revision", default=None, help="pin the Hub revision (recommended with remote code)")
    run.add_argument("--text", required=True, help="the transcript")
    run.add_argument("--audio", default=None, help="audio file (wav, mp3, ...); needs unimse-hf[media]")
    run.add_argument("--video", default=None, help="video file (mp4, ...); needs unimse-hf[media]")
    run.add_argument("--acoustic", default=None, help="precomputed acoustic frames (.npy, frames x dim)")
    run.add_argument("--visual", default=None, help="precomputed visual frames (.npy, frames x dim)")
    run.add_argument("--emotion_scores", action="store_true", help="also print each MELD emotion's probability")
    args = parser.parse_args(argv)
    json.dump(predict(args), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
