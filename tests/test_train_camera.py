"""Camera degradations of training views (train.camera, ``--degrade``, ``--degrade-kind``): each kind, the share, one
kind alone, the seeded views and their cache keys, the fresh degradations of full mode's batches, the flags' checks,
and a run with them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BLUE, draw_photo, tiny_config, write_class_folders, write_negatives
from train import ConfigError, TrainConfig
from train.camera import KINDS, NONE, Degradation, degrade, degrade_batch


def photo(seed: int = 0, size: int = 48) -> np.ndarray:
    """A ``uint8`` ``(size, size, 3)`` photo with colour, edges and texture for every degradation to act on."""
    return np.asarray(draw_photo((200, 60, 40), seed=seed).resize((size, size)), dtype=np.uint8)


def degraded_by_kind(image: np.ndarray) -> dict[str, np.ndarray]:
    """One degraded copy per kind: the kind is ``degrade``'s first draw, so a seed that draws it is found first."""
    seeds = {KINDS[int(np.random.default_rng(seed).integers(len(KINDS)))]: seed for seed in range(100)}
    assert set(seeds) == set(KINDS)
    return {kind: degrade(image, np.random.default_rng(seed)) for kind, seed in seeds.items()}


def test_each_kind_does_what_it_says_and_keeps_the_shape():
    image = photo()
    out = degraded_by_kind(image)
    for kind, result in out.items():
        assert result.shape == image.shape and result.dtype == np.uint8, kind
        assert not np.array_equal(result, image), kind
    grey = out["greyscale"].astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert out["dark"].mean() < 0.7 * image.mean()  # 20–60% of the light, plus noise
    assert np.abs(np.diff(out["blur"].astype(int), axis=1)).mean() < np.abs(np.diff(image.astype(int), axis=1)).mean()
    assert abs(out["jpeg"].astype(int).mean() - image.mean()) < 10  # the same picture, compressed


def test_share_and_seed():
    batch = np.stack([photo(seed) for seed in range(40)])
    assert degrade_batch(batch, 0.0, np.random.default_rng(0)) is batch
    every = degrade_batch(batch, 1.0, np.random.default_rng(0))
    assert all(not np.array_equal(a, b) for a, b in zip(every, batch))
    half = degrade_batch(batch, 0.5, np.random.default_rng(0))
    changed = sum(not np.array_equal(a, b) for a, b in zip(half, batch))
    assert 10 <= changed <= 30
    np.testing.assert_array_equal(half, degrade_batch(batch, 0.5, np.random.default_rng(0)))


def test_one_kind_alone_and_the_kinds_kept_in_one_order():
    batch = np.stack([photo(seed) for seed in range(10)])
    grey = Degradation(1.0, ("greyscale",)).apply(batch, np.random.default_rng(0)).astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    small = Degradation(1.0, ("small",)).apply(batch, np.random.default_rng(0)).astype(int)

    def detail(images):  # the mean step between neighbouring pixels, per image
        return np.abs(np.diff(images.astype(int), axis=1)).mean(axis=(1, 2, 3))
    assert (detail(small) < detail(batch)).all()
    assert Degradation(0.5, ("small", "blur", "small")).kinds == ("blur", "small")  # KINDS' order, no repeats
    assert Degradation(0.5, ("small", "blur")).key() == Degradation(0.5, ("blur", "small")).key()
    # All kinds: the draws and the cache key of the runs made before --degrade-kind existed.
    assert Degradation(0.7).key() == {"share": 0.7, "kinds": ["blur", "dark", "jpeg", "small", "greyscale"]}
    np.testing.assert_array_equal(Degradation(0.5).apply(batch, np.random.default_rng(1)),
                                  degrade_batch(batch, 0.5, np.random.default_rng(1)))
    assert not NONE and Degradation(0.1)


def test_only_random_views_are_degraded_and_their_cache_keys_say_so(tmp_path):
    from train.model.features import _view_batch, activation_cache_file

    batch = np.stack([photo(seed) for seed in range(8)])
    for view in (0, 1):
        np.testing.assert_array_equal(_view_batch(batch, view, degrade=Degradation(1.0)),
                                      _view_batch(batch, view))
    every = Degradation(1.0)
    plain, degraded = _view_batch(batch, 2), _view_batch(batch, 2, degrade=every, seed=3, start=16)
    assert plain.dtype == degraded.dtype == np.float32 and not np.array_equal(plain, degraded)
    np.testing.assert_array_equal(degraded, _view_batch(batch, 2, degrade=every, seed=3, start=16))  # seeded
    assert not np.array_equal(degraded, _view_batch(batch, 2, degrade=every, seed=4, start=16))

    class Net:  # the fields activation_cache_file reads
        backbone_tag, cut_name = "mobilenet_v2", "block_12_add"

    def key(view, share, kinds=KINDS):
        return activation_cache_file(tmp_path, pixel_key="p", rows=np.arange(3), network=Net(), weights_id="w",
                                     view=view, seed=0, degrade=Degradation(share, kinds))
    assert key(0, 0.7) == key(0, 0.0) and key(1, 0.7) == key(1, 0.0)  # the photo and its mirror: untouched
    assert key(2, 0.7) != key(2, 0.0) != key(2, 0.5)
    assert key(2, 0.7, ("small",)) != key(2, 0.7) and key(0, 0.7, ("small",)) == key(0, 0.0)


def test_full_mode_batches_get_fresh_degradations_in_the_same_order():
    from train.fitting.batches import epoch_batches

    pixels = np.stack([photo(seed) for seed in range(12)])
    labels, weights = np.arange(12, dtype=np.int32) % 2, np.ones(12, np.float32)

    def epoch(degrade, number):
        make = epoch_batches([pixels], labels, weights, 4, 0, "fine_tune", degrade=Degradation(degrade))
        return [(x.numpy(), y.numpy()) for x, y, _w in make(number)]
    plain, degraded, again = epoch(0.0, 0), epoch(1.0, 0), epoch(1.0, 0)
    for (x0, y0), (x1, y1), (x2, _) in zip(plain, degraded, again):
        np.testing.assert_array_equal(y0, y1)  # the same photos in the same order …
        assert not np.array_equal(x0, x1)  # … degraded …
        np.testing.assert_array_equal(x1, x2)  # … the same way in a resumed run
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(degraded, epoch(1.0, 1)))  # and anew each epoch


@pytest.mark.parametrize("overrides, message", [
    ({"degrade": 1.5}, r"^--degrade must be a number in \[0, 1\], received 1\.5$"),
    ({"degrade_kinds": ["small"]}, r"^--degrade-kind small needs --degrade P \(the share of the photos to degrade\), "
                                   r"received --degrade 0$"),
    ({"degrade": 0.7, "augment_views": 3, "degrade_kinds": ["zoom"]},
     r"^--degrade-kind must be one of \['blur', 'dark', 'jpeg', 'small', 'greyscale'\], received 'zoom'$"),
    ({"degrade": 0.7, "augment_views": 3, "degrade_kinds": []},
     r"^--degrade-kind needs at least one of \['blur', 'dark', 'jpeg', 'small', 'greyscale'\], received none$"),
    ({"degrade": 0.7}, r"^--degrade 0\.7 acts on random views: --augment-views must be 3 or more in "
                       r"--fine-tune-mode cached, received --augment-views 2$"),
])
def test_degrade_flags_errors_name_them(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), **overrides).validate()


def test_degrade_goes_with_random_views_or_full_mode(tmp_path):
    for overrides in ({"augment_views": 3}, {"fine_tune_mode": "full"}):
        TrainConfig(data=[str(tmp_path)], out=str(tmp_path / "run"), degrade=0.7, **overrides).validate()


def test_degrade_kind_flag_on_the_command_line():
    from train.cli import build_parser, config_from_args

    argv = ["--data", "d", "--out", "o", "--augment-views", "4", "--degrade", "0.7", "--degrade-kind", "small",
            "--degrade-kind", "blur"]
    config = config_from_args(build_parser().parse_args(argv)).validate()
    assert config.degrade_kinds == ["small", "blur"] and config.degradation == Degradation(0.7, ("blur", "small"))
    assert "--degrade-kind small --degrade-kind blur" in config.to_command()
    plain = config_from_args(build_parser().parse_args(argv[:4])).validate()
    assert plain.degrade_kinds == list(KINDS) and "--degrade-kind" not in plain.to_command()
    with pytest.raises(SystemExit):  # argparse names the flag and its choices
        build_parser().parse_args([*argv[:6], "--degrade-kind", "zoom"])


def test_run_with_degraded_views(tmp_path, tiny_weights):
    from train import run_training

    home = write_class_folders(tmp_path / "home", ["red", "green"], 8)
    negatives = write_negatives(tmp_path / "negatives", 8, BLUE)
    run_training(tiny_config(str(home), tmp_path / "run", tiny_weights, background=[str(negatives)],
                             augment_views=3, degrade=0.7, degrade_kinds=["small", "dark"]))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["degrade"] == 0.7 and config["augment_views"] == 3 and config["degrade_kinds"] == ["small", "dark"]
    assert any("had one camera degradation (dark, small; --degrade)" in note for note in report["notes"])
    activations = sorted((tmp_path / "cache" / "activations").glob("*.npy"))
    run_training(tiny_config(str(home), tmp_path / "plain", tiny_weights, background=[str(negatives)],
                             augment_views=3))
    # the plain run's view 2 is its own: the degraded view's cache is not reused for it
    assert len(sorted((tmp_path / "cache" / "activations").glob("*.npy"))) > len(activations)
