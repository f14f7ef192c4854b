"""The main job, small enough for 2 CPU cores: a tiny UniMSE with the real T5 vocabulary reads real
CMU-MOSI and MELD transcripts and generates universal labels.

    python examples/demo.py [--output_dir demo_output]

The model has random weights (no pretrained T5 can be downloaded here), so its labels are not yet
meaningful; the point is the full path: processor -> model.generate -> label parser -> save -> reload.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from unimse_hf import UniMSEConfig, UniMSEForConditionalGeneration, UniMSEProcessor

REPO = Path(__file__).resolve().parent.parent


def read_mosi_test(limit: int) -> list[tuple[str, float]]:
    """The first `limit` transcripts and gold scores of the CMU-MOSI test split."""
    with open(REPO / "data" / "mosi" / "label.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["mode"] == "test"]
    return [(r["text"], float(r["label"])) for r in rows[:limit]]


def read_meld_test(limit: int) -> list[tuple[str, str]]:
    """The first `limit` MELD test utterances and gold emotions."""
    with open(REPO / "data" / "meld" / "test_sent_emo.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(r["Utterance"], r["Emotion"]) for r in rows[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args()

    torch.manual_seed(0)
    processor = UniMSEProcessor.from_tokenizer_dir(REPO / "data" / "t5", acoustic_dim=64, visual_dim=64)
    config = UniMSEConfig(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4)
    model = UniMSEForConditionalGeneration(config).eval()
    print(f"UniMSE: {sum(p.numel() for p in model.parameters()):,} parameters, real T5 vocabulary ({len(processor.tokenizer)} tokens)")

    mosi, meld = read_mosi_test(args.samples), read_meld_test(args.samples)
    texts = [t for t, _ in mosi] + [t for t, _ in meld]
    gold = [f"score {s:+.2f}" for _, s in mosi] + [f"emotion {e}" for _, e in meld]
    batch = processor(texts)  # text only: acoustic and visual vectors follow config.missing_modality
    generated = model.generate(**batch, max_new_tokens=32)
    parsed = processor.post_process_generation(generated)
    print(f"\n{'dataset':8} {'gold':16} {'valid':5}  generated text  |  transcript")
    for i, (text, label) in enumerate(zip(texts, parsed)):
        print(f"{'MOSI' if i < len(mosi) else 'MELD':8} {gold[i]:16} {str(label.valid):5}  {label.text[:40]!r}  |  {text[:50]}")
    print(f"\nparse failures: {sum(not p.valid for p in parsed)}/{len(parsed)} (untrained model)")

    out = Path(args.output_dir)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    reloaded = UniMSEForConditionalGeneration.from_pretrained(out).eval()
    assert torch.equal(reloaded.generate(**batch, max_new_tokens=32), generated)
    print(f"saved to {out}/ and reloaded: identical generations")


if __name__ == "__main__":
    main()
