"""Device selection, seeding, tiers and the environment report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohash_lite import runtime
from neurohash_lite.runtime import (
    TIERS,
    Tier,
    data_dir,
    environment_report,
    resolve_tier,
    seed_everything,
    select_device,
)


def test_auto_falls_back_to_cpu_with_a_colab_hint(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="Change runtime type"):
        assert select_device("auto") == torch.device("cpu")


def test_auto_takes_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")


def test_explicit_cpu_does_not_warn(recwarn):
    assert select_device("cpu") == torch.device("cpu")
    assert not recwarn.list


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda'"):
        select_device("cuda")


def test_nonsense_device_names_the_argument():
    with pytest.raises(ValueError, match="device='gpu please'"):
        select_device("gpu please")


def test_seeding_makes_numpy_and_torch_repeat():
    seed_everything(7)
    first = (np.random.rand(4), torch.randn(4), torch.randint(0, 100, (4,)))
    seed_everything(7)
    second = (np.random.rand(4), torch.randn(4), torch.randint(0, 100, (4,)))
    assert np.array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1]) and torch.equal(first[2], second[2])
    seed_everything(8)
    assert not torch.equal(torch.randn(4), second[1])


def test_seeded_generator_repeats():
    a = torch.rand(3, generator=seed_everything(3))
    b = torch.rand(3, generator=seed_everything(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


def test_seed_makes_training_step_reproducible_on_cpu():
    def one_step():
        seed_everything(0)
        layer = torch.nn.Linear(5, 3)
        optimiser = torch.optim.SGD(layer.parameters(), lr=0.1)
        loss = layer(torch.randn(8, 5)).pow(2).mean()
        loss.backward()
        optimiser.step()
        return layer.weight.detach().clone()

    assert torch.equal(one_step(), one_step())


def test_tiers_are_the_designs():
    assert set(TIERS) == {"smoke", "book", "paper"}
    smoke, book, paper = TIERS["smoke"], TIERS["book"], TIERS["paper"]
    assert (smoke.preset, smoke.spatial_dims, smoke.image_size, smoke.bits) == ("tiny", 2, 32, (16,))
    assert smoke.epochs <= 2
    assert (book.preset, book.spatial_dims, book.image_size) == ("adni2", 2, 64)
    assert book.bits == (16, 32, 64, 128)
    assert (paper.preset, paper.spatial_dims, paper.voxel_size_mm) == ("adni1", 3, 4.0)


def test_default_tier_is_book():
    assert resolve_tier() == TIERS["book"]


def test_overrides_apply_and_none_keeps_the_tier():
    tier = resolve_tier("smoke", epochs=1, bits=[32, 64], batch_size=None)
    assert isinstance(tier, Tier)
    assert tier.epochs == 1 and tier.bits == (32, 64)
    assert tier.batch_size == TIERS["smoke"].batch_size
    assert TIERS["smoke"].epochs == 2, "resolving must not change the table"


def test_unknown_tier_and_unknown_override_are_named():
    with pytest.raises(ValueError, match="scale='huge'"):
        resolve_tier("huge")
    with pytest.raises(ValueError, match="epoch"):
        resolve_tier("book", epoch=3)


def test_data_dir_argument_then_environment(tmp_path, monkeypatch):
    assert data_dir(tmp_path / "a") == tmp_path / "a"
    assert (tmp_path / "a").is_dir()
    monkeypatch.setenv("NEUROHASH_DATA", str(tmp_path / "b"))
    assert data_dir() == tmp_path / "b"
    monkeypatch.delenv("NEUROHASH_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / "neurohash_data"


def test_environment_report_names_what_ran(monkeypatch):
    report = environment_report("cpu")
    text = str(report)
    assert report.device == "cpu"
    assert report.packages["torch"] == torch.__version__
    for needle in ("python", "torch", "numpy", "nilearn", "CUDA", "GPU", "mixed precision"):
        assert needle in text
    monkeypatch.setattr(runtime, "_package_version", lambda name: "not installed")
    assert "not installed" in str(environment_report("cpu"))


def test_run_summary_is_one_line_and_says_the_device():
    from neurohash_lite.runtime import resolve_tier, run_summary
    line = run_summary(resolve_tier("paper"), "cpu", 3)
    assert "\n" not in line and line.startswith("tier paper (adni1 cohort, 3D at 4 mm, K in 16, 32, 64, 128")
    assert line.endswith("seed 3") and " on cpu (" in line


def test_select_device_may_stay_quiet(monkeypatch):
    import warnings

    import torch

    from neurohash_lite.runtime import select_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_device("auto", warn=False) == torch.device("cpu")
