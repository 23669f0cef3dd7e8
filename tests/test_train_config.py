"""The training recipe (YAML + overrides), the selection split and the WAR/UAR metrics: fast, no training."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("yaml")

from edgefer.errors import ArgumentError  # noqa: E402
from edgefer.train.config import (apply_overrides, dump_config, for_fold, load_config, parse_folds,  # noqa: E402
                                  recipe_path, resolve)
from edgefer.train.metrics import confusion_matrix, scores  # noqa: E402
from edgefer.train.selection import split_items, stratified_split  # noqa: E402


@pytest.mark.parametrize("name", ["msstnet", "stt", "fesnet", "tiny"])
def test_shipped_recipes_resolve(name):
    config = resolve(load_config(name), source=name)
    assert config.model in ("msstnet", "stt", "fesnet")
    assert recipe_path(name).suffix == ".yaml"


def test_default_recipe_is_the_design_notes():
    c = resolve({})
    assert (c.optim.name, c.optim.lr, c.optim.momentum, c.optim.weight_decay, c.schedule.name) == \
        ("sgd", 0.01, 0.9, 1e-4, "step")
    assert c.protocol == "train-selection"


def test_overrides_reach_nested_fields_and_the_model_config():
    raw = apply_overrides(load_config("tiny"), [("optim.lr", 0.05), ("schedule.name", "cosine"),
                                                ("model_config.dim", 32), ("epochs", 3)])
    c = resolve(raw)
    assert (c.optim.lr, c.schedule.name, c.model_config["dim"], c.epochs) == (0.05, "cosine", 32, 3)
    again = resolve(__import__("yaml").safe_load(dump_config(c)))
    assert again == c  # the saved config.yaml reads back as the same run


@pytest.mark.parametrize("raw, needle", [
    ({"optim": {"lr_typo": 1}}, "unknown key optim.lr_typo"),
    ({"optim": {"lr": "fast"}}, "optim.lr takes a number"),
    ({"optim": {"name": "rmsprop"}}, "optim.name must be one of sgd, adamw"),
    ({"model_config": {"dimm": 3}}, "no field 'dimm'"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"data": {"selection_fraction": 1.5}}, "selection_fraction"),
    ({"model": "fesnet", "select_metric": "war"}, "does not fit fesnet"),
])
def test_bad_values_name_the_key(raw, needle):
    with pytest.raises(ArgumentError, match=needle):
        resolve(raw)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: msstnet\noptim: {lr: 0.1\nepochs: 3\n")
    with pytest.raises(ArgumentError, match=r"bad\.yaml: YAML error at line \d+"):
        load_config(bad)


def test_folds_replace_the_placeholder():
    assert parse_folds("1-5") == [1, 2, 3, 4, 5] and parse_folds("1,3") == [1, 3]
    with pytest.raises(ArgumentError):
        parse_folds("5-1")
    c = resolve({"data": {"train": "a/set_{fold}_train.txt", "test": "a/set_{fold}_test.txt"}})
    assert for_fold(c, 3).data.train == "a/set_3_train.txt"
    with pytest.raises(ArgumentError, match="needs '\\{fold\\}'"):
        for_fold(resolve({"data": {"train": "x.txt", "test": "y.txt"}}), 1)


def test_stratified_split_is_seeded_per_class_and_disjoint():
    labels = [0] * 20 + [1] * 10 + [2] * 3 + [3]
    train, sel = stratified_split(labels, 0.2, seed=5)
    assert sorted(train + sel) == list(range(len(labels))) and not set(train) & set(sel)
    chosen = np.asarray(labels)[sel]
    assert (chosen == 0).sum() == 4 and (chosen == 1).sum() == 2 and (chosen == 2).sum() == 1
    assert 33 in train  # a class with one item stays in training
    assert stratified_split(labels, 0.2, seed=5) == (train, sel)
    assert stratified_split(labels, 0.2, seed=6) != (train, sel)
    t, s = split_items(5, 0.2, seed=0)
    assert len(s) == 1 and len(t) == 4


def test_war_uar_over_a_fixed_label_set_never_nan():
    cm = confusion_matrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2], num_classes=7)
    s = scores(cm)
    assert s.war == pytest.approx(4 / 6)
    assert s.uar == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # classes 3..6 have no clip: left out, not NaN
    assert np.isnan(s.per_class_recall[5]) and not np.isnan(s.uar)
    assert scores(np.zeros((7, 7))).uar == 0.0
    with pytest.raises(ArgumentError):
        confusion_matrix([7], [0], num_classes=7)
