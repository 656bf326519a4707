"""Model soups: runs from one start, trained with different data orders, averaged in weight space."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from cli_checks import assert_refused_in_one_line
from datasets import make_dataset
from torch import nn

from calligraphy.cli import main
from trainer.config import TrainConfig
from trainer.soup import average_weights, finetune_configs, member_seeds


def _net(fill: float, batches: int) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.fill_(batches if not tensor.is_floating_point() else fill)
    return net


def test_average_weights_means_floats_and_keeps_the_first_models_counters():
    averaged = average_weights([_net(1.0, 5), _net(2.0, 7), _net(6.0, 9)])
    assert torch.equal(averaged["0.weight"], torch.full((2, 2), 3.0))
    assert torch.equal(averaged["1.running_var"], torch.full((2,), 3.0))
    assert averaged["1.num_batches_tracked"].item() == 5
    assert averaged["1.num_batches_tracked"].dtype == torch.long


def test_average_weights_refuses_models_with_other_layers():
    with pytest.raises(ValueError, match="different layers"):
        average_weights([_net(1.0, 0), nn.Sequential(nn.Linear(2, 2))])
    with pytest.raises(ValueError, match="at least one"):
        average_weights([])


def test_member_seeds_start_with_the_single_runs_seed():
    assert member_seeds(None, 1) == [None]
    assert member_seeds(None, 3) == [None, 1, 2]
    assert member_seeds(5, 3) == [5, 6, 7]


def test_a_soup_is_the_average_of_its_members_trained_alone(tmp_path):
    from trainer.data import scan_dataset
    from trainer.soup import train_soup
    from trainer.train import train

    root = make_dataset(tmp_path / "data", per_class=8)
    dataset = scan_dataset(root)
    valid_idx = list(range(0, len(dataset.items), 4))
    config = TrainConfig(data=root, out=tmp_path, sizes=(32,), epochs_frozen=1, epochs_unfrozen=1, bs=8, exclude=None)

    soup = train_soup(dataset, valid_idx, replace(config, members=2))
    alone = [train(dataset, valid_idx, replace(config, train_seed=seed)).learn.model for seed in (None, 1)]
    expected = average_weights(alone)
    got = soup.learn.model.state_dict()
    assert not torch.equal(alone[0].state_dict()["1.8.weight"], alone[1].state_dict()["1.8.weight"])
    assert all(torch.allclose(got[key].float(), expected[key].float(), atol=1e-6) for key in expected)
    assert len(soup.member_accuracy) == 2 and all(0.0 <= a <= 1.0 for a in soup.member_accuracy)
    assert {row["member"] for row in soup.history} == {0, 1}
    assert len(soup.history) == 2 * 2


def test_finetunes_take_the_one_character_shares_in_turn_with_member_seeds_per_share(tmp_path):
    config = TrainConfig(data=tmp_path, out=tmp_path, sizes=(128, 256), epochs_unfrozen=8)
    grid = finetune_configs(config)
    first, second = [(share, None) for share in (0.0, 0.1, 0.2)], [(share, 1) for share in (0.0, 0.1, 0.2)]
    assert [(c.p_char, c.train_seed) for c in grid] == first + second
    assert all(c.sizes == (256,) and c.epochs_unfrozen == 3 for c in grid)
    odd = replace(config, finetune_members=3, finetune_p_char=(0.0, 0.5), train_seed=4, finetune_epochs=1)
    assert [(c.p_char, c.train_seed, c.epochs_unfrozen) for c in finetune_configs(odd)] == [
        (0.0, 4, 1),
        (0.5, 4, 1),
        (0.0, 5, 1),
    ]
    assert finetune_configs(replace(config, finetune_members=0)) == []


def test_a_finetuned_soup_is_the_average_of_finetunes_that_each_start_from_the_soup(tmp_path):
    from trainer.data import scan_dataset
    from trainer.soup import finetune_soup
    from trainer.train import train

    root = make_dataset(tmp_path / "data", per_class=8)
    dataset = scan_dataset(root)
    valid_idx = list(range(0, len(dataset.items), 4))
    config = TrainConfig(
        data=root,
        out=tmp_path,
        sizes=(32,),
        epochs_frozen=1,
        epochs_unfrozen=1,
        bs=8,
        exclude=None,
        members=1,
        finetune_members=2,
        finetune_epochs=1,
        finetune_p_char=(0.0, 0.5),
    )
    soup = train(dataset, valid_idx, config)
    start = {key: tensor.clone() for key, tensor in soup.learn.model.state_dict().items()}
    finetuned = finetune_soup(dataset, valid_idx, config, soup)

    alone = [train(dataset, valid_idx, c, start).learn.model for c in finetune_configs(config)]
    expected, got = average_weights(alone), finetuned.learn.model.state_dict()
    head = "1.8.weight"
    assert not torch.equal(alone[0].state_dict()[head], alone[1].state_dict()[head])
    assert not torch.equal(got[head], start[head])
    assert all(torch.allclose(got[key].float(), expected[key].float(), atol=1e-6) for key in expected)
    assert len(finetuned.finetune_accuracy) == 2 and all(0.0 <= a <= 1.0 for a in finetuned.finetune_accuracy)
    tail = [(row["member"], row["stage"]) for row in finetuned.history[2:]]
    assert tail == [(1, 1), (1, 1), (2, 1), (2, 1)]
    assert len(finetuned.stage_seconds) == 2


def test_cli_trains_a_soup_and_reports_its_members(tmp_path, capsys):
    """The random-split baseline trains the same recipe, soup included, on the leaky split."""
    root = make_dataset(tmp_path / "data", per_class=8)
    out = tmp_path / "soup"
    args = ["train", "--data", str(root), "--out", str(out), "--sizes", "32", "--epochs-frozen", "1"]
    args += ["--epochs-unfrozen", "1", "--bs", "8", "--valid-pct", "0.25", "--no-exclude"]
    args += ["--members", "2", "--finetune-members", "0", "--random-baseline"]
    assert main(args) == 0
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["training"]["members"] == 2
    assert len(metadata["metrics"]["member_accuracy"]) == 2
    assert 0.0 <= metadata["metrics"]["random_split_accuracy"] <= 1.0
    assert {row["member"] for row in metadata["history"]} == {0, 1}
    assert (out / "history.png").stat().st_size > 0
    assert "random split" in capsys.readouterr().out


def test_cli_finetunes_the_soup_and_reports_the_finetunes(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", per_class=8)
    out = tmp_path / "finetuned"
    args = ["train", "--data", str(root), "--out", str(out), "--sizes", "32", "--epochs-frozen", "1"]
    args += ["--epochs-unfrozen", "1", "--bs", "8", "--valid-pct", "0.25", "--no-exclude", "--members", "1"]
    args += ["--finetune-members", "2", "--finetune-epochs", "1", "--finetune-p-char", "0,0.5"]
    assert main(args) == 0
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["training"]["finetune_members"] == 2
    assert metadata["training"]["finetune_p_char"] == [0.0, 0.5]
    assert len(metadata["metrics"]["finetune_accuracy"]) == 2
    assert {(row.get("member", 0), row["stage"]) for row in metadata["history"]} == {(0, 0), (1, 1), (2, 1)}
    assert len(metadata["timings"]["stage_s"]) == 2
    assert (out / "history.png").stat().st_size > 0


@pytest.mark.parametrize("shares", ["0,2", "", "a"])
def test_cli_refuses_finetune_shares_outside_zero_to_one(shares, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--data", "d", "--out", "o", "--finetune-p-char", shares])
    assert "--finetune-p-char" in capsys.readouterr().err


def test_cli_refuses_finetunes_with_no_epochs_in_one_line(tmp_path, capsys):
    args = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--epochs-frozen", "0"]
    status = main([*args, "--finetune-epochs", "0"])
    assert_refused_in_one_line(status, capsys, "--finetune-epochs must be >= 0 and not 0", tmp_path / "out")


def _train(root, out, *extra: str) -> dict:
    args = ["train", "--data", str(root), "--out", str(out), "--sizes", "32", "--epochs-frozen", "1"]
    args += ["--epochs-unfrozen", "1", "--bs", "8", "--valid-pct", "0.25", "--no-exclude", "--members", "1"]
    args += ["--finetune-members", "0"]
    assert main([*args, "--export-learner", *extra]) == 0
    return json.loads((out / "model.json").read_text())


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """Two runs from one start: the default recipe, and a variant with another train seed and mounts."""
    base = tmp_path_factory.mktemp("runs")
    root = make_dataset(base / "data", per_class=8)
    runs = [base / "a", base / "b"]
    metas = [_train(root, runs[0]), _train(root, runs[1], "--train-seed", "1", "--p-mount", "0.5")]
    return root, runs, metas


def _model(run) -> nn.Module:
    from trainer.train import load_run_learner

    return load_run_learner(run).model


def test_soup_command_averages_finished_runs_and_calibrates_the_result(finished_runs, tmp_path, capsys):
    from model_store.runtime import Classifier

    root, runs, metas = finished_runs
    out = tmp_path / "soup"
    assert main(["soup", "--out", str(out), "--data", str(root), "--export-learner", *map(str, runs)]) == 0
    expected, got = average_weights([_model(run) for run in runs]), _model(out).state_dict()
    assert not torch.equal(_model(runs[0]).state_dict()["1.8.weight"], _model(runs[1]).state_dict()["1.8.weight"])
    assert all(torch.allclose(got[k].float(), expected[k].float(), atol=1e-6) for k in expected)
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["training"]["members"] == 2
    assert metadata["metrics"]["member_accuracy"] == [m["metrics"]["accuracy"] for m in metas]
    assert [a["run"] for a in metadata["assembled_from"]] == [str(r) for r in runs]
    assert metadata["assembled_from"][1]["training"]["p_mount"] == 0.5
    assert {row["member"] for row in metadata["history"]} == {0, 1}
    assert metadata["dataset"]["valid_files"] == metas[0]["dataset"]["valid_files"]
    assert metadata["temperature"] == metadata["calibration"]["temperature"] > 0
    assert (out / "history.png").stat().st_size > 0 and (out / "reliability.png").stat().st_size > 0
    file = metadata["dataset"]["valid_files"][0]
    assert Classifier(out).predict((root / file).read_bytes()).label in metadata["classes"]
    assert "soup of 2 runs" in capsys.readouterr().out


def test_soup_command_refuses_runs_that_cannot_be_averaged(finished_runs, tmp_path, capsys):
    import shutil

    root, runs, _ = finished_runs
    out = tmp_path / "soup"
    other_start = tmp_path / "other-start"
    shutil.copytree(runs[1], other_start)
    meta = json.loads((other_start / "model.json").read_text())
    meta["training"]["seed"] = 7
    (other_start / "model.json").write_text(json.dumps(meta))
    no_learner = tmp_path / "no-learner"
    shutil.copytree(runs[1], no_learner)
    (no_learner / "learner.pkl").unlink()

    base = ["soup", "--out", str(out), "--data", str(root)]
    assert_refused_in_one_line(main([*base, str(runs[0]), str(other_start)]), capsys, "did not start alike", out)
    assert_refused_in_one_line(main([*base, str(runs[0]), str(no_learner)]), capsys, "has no learner.pkl", out)
    assert_refused_in_one_line(main([*base, str(runs[0])]), capsys, "at least two runs", out)
    elsewhere = make_dataset(tmp_path / "other-data", per_class=2)
    other_data = ["soup", "--out", str(out), "--data", str(elsewhere), *map(str, runs)]
    assert_refused_in_one_line(main(other_data), capsys, "validation images", out)
    missing = str(tmp_path / "missing")
    assert_refused_in_one_line(main([*base, str(runs[0]), missing]), capsys, "is not a training run", out)
    onto_a_run = ["soup", "--out", str(runs[1]), "--data", str(root), *map(str, runs)]
    assert_refused_in_one_line(main(onto_a_run), capsys, "exists", tmp_path / "x")
