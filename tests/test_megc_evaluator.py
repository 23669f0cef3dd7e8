"""The MEGC spotting evaluator on hand-made cases, under both counting variants."""

import pytest

from edgefer.spotting import VARIANTS, evaluate, interval_iou

BOTH = pytest.mark.parametrize("variant", VARIANTS)


def counts(result, label="overall"):
    c = result[label]
    return c.tp, c.fp, c.fn


@BOTH
def test_exact_match_is_one_true_positive(variant):
    r = evaluate([("v1", 10, 19, "micro")], [("v1", 10, 19, "micro")], variant)
    assert counts(r, "micro") == (1, 0, 0)
    assert counts(r, "macro") == (0, 0, 0)
    assert r.overall.precision == r.overall.recall == r.overall.f1 == 1.0


@BOTH
@pytest.mark.parametrize("end, hit", [(200, False), (199, True), (198, True)])
def test_iou_just_under_at_and_just_over_one_half(variant, end, hit):
    # GT [0, 99] (100 frames) vs prediction [0, end]: IoU 100/201 = 0.4975, 100/200 = 0.5, 100/199 = 0.5025.
    r = evaluate([("v", 0, 99, "macro")], [("v", 0, end, "macro")], variant, iou=0.5)
    assert counts(r, "macro") == ((1, 0, 0) if hit else (0, 1, 1))


def test_interval_iou_counts_both_ends():
    assert interval_iou(0, 9, 0, 9) == 1.0
    assert interval_iou(0, 9, 5, 14) == pytest.approx(5 / 15)
    assert interval_iou(0, 9, 9, 20) == pytest.approx(1 / 21)  # they share frame 9
    assert interval_iou(0, 9, 10, 20) == 0.0
    assert interval_iou(4, 4, 4, 4) == 1.0  # a one-frame interval is an ordinary interval
    with pytest.raises(ValueError, match="ends before it starts"):
        interval_iou(5, 4, 0, 9)


def test_one_prediction_covering_two_ground_truths_variants_disagree():
    gt = [("v", 0, 9, "micro"), ("v", 2, 11, "micro")]  # overlapping annotations
    pred = [("v", 1, 10, "micro")]  # IoU 9/11 with each
    old = evaluate(gt, pred, "megc2020")
    new = evaluate(gt, pred, "megc2023")
    # MEGC2020: TP = distinct GT hit = 2, FP = predictions - TP = -1 (precision 2, as the official formula).
    assert counts(old) == (2, -1, 0)
    assert old.overall.precision == 2.0
    assert old.overall.f1 == pytest.approx(2 * 2 / (2 + 1))  # F1 = 2a / (m + n)
    # MEGC2023: the prediction claims both; it is not an FP.
    assert counts(new) == (2, 0, 0)
    assert new.overall.precision == new.overall.f1 == 1.0


def test_prediction_covering_two_halves_at_exactly_one_half():
    gt = [("v", 0, 9, "macro"), ("v", 10, 19, "macro")]
    pred = [("v", 0, 19, "macro")]  # IoU exactly 0.5 with each half
    assert counts(evaluate(gt, pred, "megc2020")) == (2, -1, 0)
    assert counts(evaluate(gt, pred, "megc2023")) == (2, 0, 0)
    assert counts(evaluate(gt, pred, "megc2023", iou=0.51)) == (0, 1, 2)


@BOTH
def test_two_predictions_on_one_ground_truth(variant):
    r = evaluate([("v", 0, 9, "macro")], [("v", 0, 9, "macro"), ("v", 1, 10, "macro")], variant)
    assert counts(r) == (1, 1, 0)
    assert r.overall.precision == 0.5 and r.overall.recall == 1.0
    assert r.overall.f1 == pytest.approx(2 / 3)


def test_megc2023_takes_predictions_in_the_order_given():
    gt = [("v", 0, 9, "micro"), ("v", 10, 19, "micro")]
    narrow, wide = ("v", 0, 9, "micro"), ("v", 0, 19, "micro")  # narrow hits A; wide hits A and B
    assert counts(evaluate(gt, [narrow, wide], "megc2023")) == (2, 0, 0)  # wide still claims B
    assert counts(evaluate(gt, [wide, narrow], "megc2023")) == (2, 1, 0)  # narrow finds A claimed: FP
    # MEGC2020 does not depend on the order.
    assert counts(evaluate(gt, [narrow, wide], "megc2020")) == (2, 0, 0)
    assert counts(evaluate(gt, [wide, narrow], "megc2020")) == (2, 0, 0)


def test_variants_disagree_with_a_stray_prediction():
    gt = [("v", 0, 9, "macro"), ("v", 10, 19, "macro")]
    preds = [("v", 0, 19, "macro"), ("v", 0, 9, "macro"), ("v", 50, 60, "macro")]
    assert counts(evaluate(gt, preds, "megc2020")) == (2, 1, 0)
    assert counts(evaluate(gt, preds, "megc2023")) == (2, 2, 0)


@BOTH
def test_video_without_predictions_counts_its_ground_truth_as_missed(variant):
    gt = [("v1", 0, 9, "micro"), ("v2", 0, 9, "micro"), ("v2", 20, 29, "micro")]
    r = evaluate(gt, [("v1", 0, 9, "micro")], variant)
    assert counts(r, "micro") == (1, 0, 2)
    assert r.num_videos == 2
    assert r.overall.recall == pytest.approx(1 / 3) and r.overall.precision == 1.0
    assert r.overall.f1 == pytest.approx(0.5)


@BOTH
def test_empty_inputs_give_zero_scores_without_division_error(variant):
    r = evaluate([], [], variant)
    assert counts(r) == (0, 0, 0)
    assert (r.overall.precision, r.overall.recall, r.overall.f1) == (0.0, 0.0, 0.0)
    assert r.num_videos == 0
    only_pred = evaluate([], iter([("v", 0, 9, "macro")]), variant)
    assert counts(only_pred) == (0, 1, 0) and only_pred.overall.f1 == 0.0
    only_gt = evaluate([("v", 0, 9, "macro")], [], variant)
    assert counts(only_gt) == (0, 0, 1) and only_gt.overall.f1 == 0.0


@BOTH
def test_classes_and_videos_are_matched_separately_and_pooled(variant):
    gt = [("v1", 0, 9, "micro"), ("v1", 100, 199, "macro"), ("v2", 0, 9, "micro")]
    preds = [("v1", 0, 9, "macro"),            # right place, wrong class: FP (macro), GT micro missed
             ("v1", 100, 199, "macro", 0.9),   # a score is allowed and ignored
             ("v3", 0, 9, "micro"),            # right frames, other video: FP
             ("v2", 1, 9, "micro-expression")]  # MEGC class names accepted
    r = evaluate(gt, preds, variant)
    assert counts(r, "macro") == (1, 1, 0)
    assert counts(r, "micro") == (1, 1, 1)
    assert counts(r) == (2, 2, 1)
    # Pooled, not averaged over classes: overall precision is 2 / 4.
    assert r.overall.precision == 0.5 and r.overall.recall == pytest.approx(2 / 3)
    assert r.to_dict()["overall"]["tp"] == 2 and r.to_dict()["micro"]["fn"] == 1


def test_threshold_changes_the_result():
    gt, pred = [("v", 0, 9, "micro")], [("v", 5, 14, "micro")]  # IoU 1/3
    assert counts(evaluate(gt, pred, iou=0.5)) == (0, 1, 1)
    assert counts(evaluate(gt, pred, iou=0.3)) == (1, 0, 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"variant": "megc2021"}, "unknown variant"),
    ({"iou": 0}, "iou threshold"),
    ({"iou": 1.5}, "iou threshold"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate([], [], **kwargs)


@pytest.mark.parametrize("item, message", [
    (("v", 0, 9, "big"), "label 'big'"),
    (("v", 9, 0, "micro"), "ends"),
    (("v", 0.5, 9, "micro"), "integer frame"),
    (("v", -1, 9, "micro"), ">= 0"),
    (("v", 0, 9), "must be a tuple"),
    ("v 0 9 micro", "must be a tuple"),
])
def test_malformed_tuples_raise_naming_the_item(item, message):
    with pytest.raises(ValueError, match=message) as info:
        evaluate([item], [])
    assert "ground_truth[0]" in str(info.value)


def test_non_iterable_raises_type_error():
    with pytest.raises(TypeError, match="ground_truth must be an iterable"):
        evaluate(5, [])


def test_table_lists_each_class_and_overall():
    r = evaluate([("v", 0, 9, "micro")], [("v", 0, 9, "micro")], "megc2023")
    lines = r.table().splitlines()
    assert lines[0].startswith("megc2023")
    assert [line.split()[0] for line in lines[2:]] == ["macro", "micro", "overall"]
    assert lines[3].split()[1:6] == ["1", "1", "1", "0", "0"]
