"""Gender bias: the NTU-Bias split builder on a small synthetic table, the gender table, the protocol run."""

import numpy as np
import pytest

from evaluate.protocols.bias import BiasConfig, build_ntu_bias_split, read_gender_table, resolve_class, run
from data_manifests.errors import FeatstoreError
from featstore.store import Store


def synthetic_table():
    """6 train subjects (4 M, 2 F) and 4 test subjects (2 M, 2 F); 3 actions; 20 videos per subject and
    action in train, 10 in test. Returns (subjects, labels, splits, genders)."""
    genders = {"m1": "M", "m2": "M", "m3": "M", "m4": "M", "f1": "F", "f2": "F",
               "tm1": "M", "tm2": "M", "tf1": "F", "tf2": "F"}
    subjects, labels, splits = [], [], []
    for subject in genders:
        split = "test" if subject.startswith("t") else "train"
        for action in range(3):
            n = 10 if split == "test" else 20
            subjects += [subject] * n
            labels += [action] * n
            splits += [split] * n
    return np.array(subjects, dtype=object), np.array(labels), np.array(splits), genders


def counts(out, subjects, labels, genders, split, action):
    gender = np.array([genders[s] for s in subjects])
    chosen = (out == split) & (labels == action)
    return int((chosen & (gender == "F")).sum()), int((chosen & (gender == "M")).sum())


def test_ntu_bias_f_balances_then_biases_the_training_split():
    subjects, labels, splits, genders = synthetic_table()
    out = build_ntu_bias_split(subjects, labels, splits, genders, shortcut_label=1, favoured="F", ratio=0.95, seed=0)
    train_subjects = set(subjects[out == "train"])
    assert sum(genders[s] == "M" for s in train_subjects) == sum(genders[s] == "F" for s in train_subjects) == 2
    # per action and gender m = 40 videos after balancing; shortcut action 1 keeps 38 F and 2 M
    assert counts(out, subjects, labels, genders, "train", 1) == (38, 2)
    assert counts(out, subjects, labels, genders, "train", 0) == (2, 38)
    assert counts(out, subjects, labels, genders, "train", 2) == (2, 38)
    for action in range(3):  # test: balanced, untouched by the bias
        assert counts(out, subjects, labels, genders, "test", action) == (20, 20)
    assert set(out[splits == "test"]) == {"test"} and set(out[splits == "train"]) <= {"train", ""}


def test_ntu_bias_m_swaps_genders_and_the_builder_is_pure_and_seeded():
    subjects, labels, splits, genders = synthetic_table()
    before = (subjects.copy(), labels.copy(), splits.copy(), dict(genders))
    out_m = build_ntu_bias_split(subjects, labels, splits, genders, shortcut_label=1, favoured="M", seed=0)
    assert counts(out_m, subjects, labels, genders, "train", 1) == (2, 38)
    assert counts(out_m, subjects, labels, genders, "train", 0) == (38, 2)
    again = build_ntu_bias_split(subjects, labels, splits, genders, shortcut_label=1, favoured="M", seed=0)
    other_seed = build_ntu_bias_split(subjects, labels, splits, genders, shortcut_label=1, favoured="M", seed=1)
    assert np.array_equal(out_m, again) and not np.array_equal(out_m, other_seed)
    assert all(np.array_equal(a, b) for a, b in zip(before[:3], (subjects, labels, splits))) and before[3] == genders


def test_a_split_without_both_genders_is_refused():
    subjects, labels, splits, genders = synthetic_table()
    genders = {s: "M" for s in genders}
    with pytest.raises(FeatstoreError, match="both genders"):
        build_ntu_bias_split(subjects, labels, splits, genders, shortcut_label=0, favoured="F")


def test_gender_table_and_class_names(tmp_path):
    good = tmp_path / "g.csv"
    good.write_text("subject,gender\ns1,Female\ns2,m\n")
    assert read_gender_table(good) == {"s1": "F", "s2": "M"}
    for text, message in (("who,gender\ns1,F\n", "columns"), ("subject,gender\ns1,x\n", "F/female"),
                          ("subject,gender\ns1,F\ns1,M\n", "two genders"), ("subject,gender\n", "empty")):
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(FeatstoreError, match=message):
            read_gender_table(bad)
    names = ["drink water", "eat meal", "brush teeth", "brush_hair"]
    assert resolve_class("brush hair", names) == 3 and resolve_class("Brush-Hair", names) == 3
    assert resolve_class("2", names) == 2
    with pytest.raises(FeatstoreError, match="not a class"):
        resolve_class("juggle", names)


@pytest.fixture()
def gender_csv(tiny_store, tmp_path):
    """Perceived gender of the synthetic subjects taken from their gender_shape attribute."""
    table = Store.open(tiny_store).videos()
    lines = ["subject,gender"]
    for subject in sorted(set(table.subject.tolist())):
        lines.append(f"{subject},{'F' if table.attributes[table.subject == subject][0][1] == 1 else 'M'}")
    path = tmp_path / "genders.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tsh_reports_per_gender_accuracy_overall_and_gap(planted_store, gender_csv):
    config = BiasConfig(protocol="tsh", genders=str(gender_csv), epochs=50, lr=1e-2)
    result = run(Store.open(planted_store), config)
    assert result["gap"] == pytest.approx(abs(result["accuracy_F"] - result["accuracy_M"]))
    n_test = result["n_test_videos"]
    weighted = (result["accuracy_F"] * n_test["F"] + result["accuracy_M"] * n_test["M"]) / (n_test["F"] + n_test["M"])
    assert result["overall"] == pytest.approx(weighted) and result["overall"] >= 0.5
    assert n_test["F"] + n_test["M"] == 10 and result["shortcut_class"] is None


def test_ntu_protocol_on_a_store_too_small_to_balance_is_a_clear_error(planted_store, gender_csv):
    # the tiny store has one test video per action, so no action can hold both genders in test
    config = BiasConfig(protocol="ntu-bias-f", genders=str(gender_csv), shortcut_class="move_left", epochs=1)
    with pytest.raises(FeatstoreError, match="0 test videos"):
        run(Store.open(planted_store), config)


def test_bad_bias_configs(tmp_path, gender_csv):
    with pytest.raises(FeatstoreError, match="does not exist"):
        BiasConfig(genders=str(tmp_path / "missing.csv"))
    with pytest.raises(FeatstoreError, match="protocol"):
        BiasConfig(protocol="ntu", genders=str(gender_csv))
    with pytest.raises(FeatstoreError, match="ratio"):
        BiasConfig(genders=str(gender_csv), ratio=0.4)


def test_the_default_shortcut_action_is_ntu60s_name_for_it():
    from data_manifests.builders.ntu60 import NTU60_CLASSES

    # the paper's "brush hair" is NTU60's A004, named "brushing hair" in the builder's class list
    assert resolve_class(BiasConfig.__dataclass_fields__["shortcut_class"].default, NTU60_CLASSES) == 3
