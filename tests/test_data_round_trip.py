"""Round trip: prepare_data.py writes Parquet that train_unimse.py trains on directly."""

import sys

from unimse_testing import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "examples"))

import prepare_data  # noqa: E402
import train_unimse  # noqa: E402


def test_prepared_mosi_and_meld_train_a_few_steps_and_save_a_loadable_model(tmp_path):
    from unimse_hf import UniMSEForConditionalGeneration

    assert prepare_data.main(["--dataset", "mosi", "--source", str(REPO_ROOT / "data" / "mosi" / "label.csv"),
                              "--output_dir", str(tmp_path / "mosi")]) == 0
    assert prepare_data.main(["--dataset", "meld", "--source", str(REPO_ROOT / "data" / "meld"),
                              "--output_dir", str(tmp_path / "meld")]) == 0
    trainer = train_unimse.main([
        "--tiny", "--tokenizer_dir", str(REPO_ROOT / "data" / "t5"),
        "--dataset_dir", str(tmp_path / "mosi"), str(tmp_path / "meld"), "--max_train_samples", "16",
        "--output_dir", str(tmp_path / "run"), "--do_train", "--max_steps", "2", "--per_device_train_batch_size", "4",
        "--save_strategy", "no", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
    ])
    assert trainer.state.global_step == 2
    assert {row["dataset"] for row in trainer.train_dataset} <= {"mosi", "meld"}
    model = UniMSEForConditionalGeneration.from_pretrained(tmp_path / "run")
    assert model.config.model_type == "unimse"
