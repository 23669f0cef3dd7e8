"""The MEGC evaluator and its readers on the real MEGC2020 spotting fixture (``../shared/data/megc2020``).

The fixture holds the organisers' ground truth and their baseline's predictions. The organisers published the
baseline's scores (``MDMD_results/eval_res_txt/MEGC2020_results.txt`` in
``HeyingGithub/Baseline-project-for-MEGC2020_spotting``); under ``megc2020`` our counts must equal them.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from edgefer.cli import main
from edgefer.spotting import (DATASETS, MegcFormatError, evaluate, filter_by_length, read_ground_truth,
                              read_predictions, read_video_predictions)

FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "megc2020"
needs_fixture = pytest.mark.skipif(not (FIXTURE / "gt_casme2.txt").is_file(),
                                   reason=f"MEGC2020 fixture not found at {FIXTURE} (it lives outside the repo)")

# (predictions, TP, ground truth) per class, from the organisers' MEGC2020_results.txt.
PUBLISHED = {
    "casme2": {"micro": (5035, 21, 57), "macro": (1523, 109, 300)},
    "samm_lv": {"micro": (1436, 29, 159), "macro": (356, 22, 343)},
}
PUBLISHED_F1 = {"casme2": {"micro": 0.008248232521602514, "macro": 0.11958310477235326,
                           "overall": 0.03759942154736081},
                "samm_lv": {"micro": 0.03636363636363636, "macro": 0.06294706723891273,
                            "overall": 0.04446381865736704}}


def _line_count(path):
    return sum(1 for line in path.read_text().splitlines() if line.strip())


@needs_fixture
@pytest.mark.parametrize("dataset", DATASETS)
def test_fixture_tables_are_consistent_and_match_the_published_baseline(dataset):
    ground_truth = read_ground_truth(FIXTURE / f"gt_{dataset}.txt")
    assert len(ground_truth) == _line_count(FIXTURE / f"gt_{dataset}.txt")
    gt_per_class = Counter(label for *_, label in ground_truth)
    predictions = read_predictions(FIXTURE, dataset)
    kept = filter_by_length(predictions, dataset)
    assert 0 < len(kept) < len(predictions)
    kept_per_class = Counter(item[3] for item in kept)
    results = {variant: evaluate(ground_truth, kept, variant) for variant in ("megc2020", "megc2023")}
    for result in results.values():
        print()
        print(result.table(f"{dataset} {result.variant} (IoU >= 0.5, {result.num_videos} videos)"))
    for variant, result in results.items():
        for label in ("macro", "micro"):
            c = result[label]
            assert c.tp + c.fn == gt_per_class[label] == c.n_ground_truth
            assert c.n_predictions == kept_per_class[label]
            if variant == "megc2020":
                assert c.tp + c.fp == kept_per_class[label]
            else:  # a prediction claiming k > 1 ground truths adds k - 1 to TP + FP
                assert c.tp + c.fp >= kept_per_class[label]
                assert c.tp == results["megc2020"][label].tp
        o = result.overall
        assert (o.tp, o.fp, o.fn) == tuple(sum(getattr(result[l], f) for l in ("macro", "micro"))
                                           for f in ("tp", "fp", "fn"))
    for label, (n_pred, tp, n_gt) in PUBLISHED[dataset].items():
        c = results["megc2020"][label]
        assert (c.n_predictions, c.tp, c.n_ground_truth) == (n_pred, tp, n_gt)
        assert c.f1 == pytest.approx(PUBLISHED_F1[dataset][label], rel=1e-12)
    assert results["megc2020"].overall.f1 == pytest.approx(PUBLISHED_F1[dataset]["overall"], rel=1e-12)


@needs_fixture
def test_variants_disagree_on_casme2_macro():
    # CAS(ME)^2 has overlapping macro annotations: some baseline predictions hit two of them.
    gt = read_ground_truth(FIXTURE / "gt_casme2.txt")
    kept = filter_by_length(read_predictions(FIXTURE, "casme2"), "casme2")
    old, new = (evaluate(gt, kept, v)["macro"] for v in ("megc2020", "megc2023"))
    assert old.tp == new.tp and new.fp > old.fp


@needs_fixture
def test_cli_prints_tables_and_writes_json(tmp_path, capsys):
    out = tmp_path / "scores.json"
    code = main(["eval-spotting", "--ground-truth", str(FIXTURE / "gt_samm_lv.txt"), "--predictions", str(FIXTURE),
                 "--dataset", "samm_lv", "--variant", "both", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "megc2020" in text and "megc2023" in text and "overall" in text
    report = json.loads(out.read_text())
    assert report["predictions_kept"] == 1436 + 356
    micro = report["results"]["megc2020"]["micro"]
    assert (micro["predictions"], micro["tp"], micro["ground_truth"]) == (1436, 29, 159)
    assert micro["fp"] == 1436 - 29 and micro["fn"] == 159 - 29


def test_cli_reports_a_missing_file_in_one_line(tmp_path, capsys):
    (tmp_path / "micro").mkdir()
    code = main(["eval-spotting", "--ground-truth", str(tmp_path / "nope.txt"), "--predictions", str(tmp_path),
                 "--dataset", "casme2"])
    assert code == 1
    assert "nope.txt does not exist" in capsys.readouterr().err


def test_readers_parse_and_reject(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("s15 0401 macro-expression 557.0 572.0 608.0\n\n006 1 micro-expression 0 368 403\n")
    assert read_ground_truth(gt) == [("s15_0401", 557, 608, "macro"), ("006_1", 0, 403, "micro")]
    (tmp_path / "casme2_micro").mkdir()
    (tmp_path / "casme2_micro" / "s15_0401.txt").write_text("82 85 1.0\n20 30 0.5\n")
    assert read_predictions(tmp_path, "casme2") == [("s15_0401", 82, 85, "micro", 1.0),
                                                    ("s15_0401", 20, 30, "micro", 0.5)]
    kept = filter_by_length(read_predictions(tmp_path, "casme2"), "casme2")
    assert kept == [("s15_0401", 20, 30, "micro", 0.5)]  # 4 frames is under a micro's 7
    for bad, message in [("s15 0401 mega-expression 1 2 3\n", "class"), ("s15 0401 macro-expression 1 2\n", "onset apex offset"),
                         ("s15 0401 macro-expression 9 9 3\n", "before"),
                         ("s15 0401 macro-expression 1.5 2 3\n", "integer")]:
        gt.write_text(bad)
        with pytest.raises(MegcFormatError, match=message) as info:
            read_ground_truth(gt)
        assert "gt.txt:1" in str(info.value)
    bad_pred = tmp_path / "x.txt"
    bad_pred.write_text("1 2 high\n")
    with pytest.raises(MegcFormatError, match="score"):
        read_video_predictions(bad_pred, "micro")
    with pytest.raises(MegcFormatError, match="no prediction folder"):
        read_predictions(tmp_path / "casme2_micro", "casme2")
    with pytest.raises(ValueError, match="unknown dataset"):
        read_predictions(tmp_path, "casme3")
