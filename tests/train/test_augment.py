"""study.train.augment: config validation, parameter distributions against torchvision's definitions,
determinism, shapes at 16/28/224 px, and the photometric operations against torchvision.transforms.v2.functional."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image
from scipy import stats

from study.errors import StudyError
from study.train.augment import AugmentConfig, build_augment
from study.train.augment import geometric, photometric
from study.train.augment.photometric_cv import JITTER, ColourImage, gaussian_taps
from study.train.augment.pipeline import Augment


def smooth_image(width: int = 120, height: int = 90, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC)


def jpeg(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    buf.seek(0)
    return Image.open(buf)


def batch_of(aug: Augment, n: int, seed: int = 0, size: tuple[int, int] = (120, 90)) -> list[torch.Tensor]:
    samples = [aug.sample(smooth_image(*size, seed=i), np.random.default_rng([seed, i])) for i in range(n)]
    return [torch.stack([s[v] for s in samples]) for v in range(aug.num_views)]


# ---------------------------------------------------------------- config
def test_presets_and_effective_values():
    simclr = AugmentConfig.from_dict({"preset": "simclr"})
    assert (simclr.num_views, simclr.crop_scale, simclr.flip_p, simclr.jitter_p, simclr.grayscale_p) == (
        2, (0.08, 1.0), 0.5, 0.8, 0.2)
    assert simclr.jitter_effective == (0.8, 0.8, 0.8, 0.2) and simclr.blur_p == (0.5, 0.5)
    assert simclr.blur_kernel == 23 and simclr.blur_sigma == (0.1, 2.0) and simclr.crop_ratio == (3 / 4, 4 / 3)
    assert AugmentConfig.from_dict({"jitter_strength": 0.5}).jitter_effective == (0.4, 0.4, 0.4, 0.1)
    byol = AugmentConfig.from_dict({"preset": "byol"})
    assert byol.blur_p == (1.0, 0.1) and byol.solarize_p == (0.0, 0.2) and byol.solarize_threshold == 0.5
    assert byol.jitter_effective == (0.4, 0.4, 0.2, 0.1) and (byol.jitter_p, byol.grayscale_p) == (0.8, 0.2)  # BYOL
    sup = AugmentConfig.from_dict({"preset": "supervised"})
    assert sup.num_views == 1 and sup.jitter_p == 0 and sup.flip_p == 0.5 and sup.crop == "random_resized"
    ev = AugmentConfig.from_dict({"preset": "eval", "image_size": 32})
    assert ev.crop == "center" and ev.flip_p == 0 and ev.blur_kernel == 3
    assert [AugmentConfig.from_dict({"image_size": s}).blur_kernel for s in (224, 96, 64, 32, 28, 16)] == [
        23, 9, 7, 3, 3, 1]
    four = AugmentConfig.from_dict({"num_views": 4})
    assert four.blur_p == (0.5,) * 4
    scalar = AugmentConfig.from_dict({"blur_p": 0.3, "solarize_p": 0.1})  # one probability: every view's
    assert scalar.blur_p == (0.3, 0.3) and scalar.solarize_p == (0.1, 0.1)
    # ours (the documented protocol): bilinear resize, torchvision's eval resize and ImageNet normalisation, drafts
    assert (simclr.interpolation, simclr.resize_ratio, simclr.mean, simclr.std, simclr.jpeg_draft) == (
        "bilinear", 256 / 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), True)
    d = simclr.to_dict()
    assert AugmentConfig.from_dict(d) == simclr and build_augment(simclr).describe() == d


def test_random_settings_name_what_draws_at_random():
    """What an evaluation refuses in its scoring transform (study.evaluate.config): the eval preset draws nothing,
    nor do settings that change no pixel (a 1-px blur kernel, jitter of strength 0); every training preset does."""
    assert AugmentConfig.from_dict({"preset": "eval"}).random_settings() == {}
    assert AugmentConfig.from_dict({"preset": "eval", "image_size": 16, "blur_p": 1.0}).random_settings() == {}
    assert AugmentConfig.from_dict({"preset": "eval", "jitter_p": 1.0, "jitter_strength": 0}).random_settings() == {}
    assert AugmentConfig.from_dict({"preset": "eval", "solarize_p": 0.2}).random_settings() == {"solarize_p": [0.2]}
    assert list(AugmentConfig.from_dict({"preset": "supervised"}).random_settings()) == ["crop", "flip_p"]
    assert list(AugmentConfig.from_dict({"preset": "simclr"}).random_settings()) == [
        "crop", "num_views", "flip_p", "jitter_p", "grayscale_p", "blur_p"]


@pytest.mark.parametrize("d, key", [
    ({"nope": 1}, "nope"),
    ({"preset": "moco"}, "preset"),
    ({"image_size": 0}, "image_size"),
    ({"crop_scale": [0.5, 0.1]}, "crop_scale"),
    ({"flip_p": 1.5}, "flip_p"),
    ({"blur_p": [0.5, 0.5, 0.5]}, "blur_p"),
    ({"preset": "byol", "num_views": 3}, "blur_p"),
    ({"std": [1, 0, 1]}, "std"),
    ({"blur_kernel": 5}, "blur_kernel"),
    ({"interpolation": "nearest"}, "interpolation"),
    ({"image_size": 4}, "image_size"),
    ({"hue": 0.4, "jitter_strength": 2.0}, "hue"),
    ({"solarize_threshold": 1.5}, "solarize_threshold"),
    ({"crop_scale": [0.5, 1.5]}, "crop_scale"),
    ({"resize_ratio": 0.5}, "resize_ratio"),
    ({"blur_sigma": [0, 1]}, "blur_sigma"),  # a sigma of 0 divides by zero in the kernel
    ({"crop_ratio": [0, 1]}, "crop_ratio"),  # its log is drawn from
    ({"preset": ["simclr"]}, "preset"),  # unhashable: not a TypeError
    ({"grayscale_p": 1.5}, "grayscale_p"),
    ({"blur_p": [0.5, 1.5]}, "blur_p"),  # each per-view probability in [0, 1]
    ({"solarize_p": 1.5}, "solarize_p"),
    ({"contrast": -0.5}, "contrast"),  # a negative strength would be taken as 0, silently
    ({"blur_kernel_fraction": 1.0}, "blur_kernel_fraction"),
    ({"num_views": 0}, "num_views"),
    ({"num_views": True}, "num_views"),  # a bool is no count
    ({"image_size": 7}, "image_size"),
    ({"flip_p": -0.1}, "flip_p"),
    ({"solarize_p": [-0.1, 0.0]}, "solarize_p"),
    ({"resize_ratio": 0.99}, "resize_ratio"),  # the centre crop would not fit the resized image
    ({"jpeg_draft": 1}, "jpeg_draft"),
    ({"crop_scale": [0.1, 0.5, 0.9]}, "crop_scale"),
    ({"mean": [0.5, 0.5]}, "mean"),
])
def test_bad_keys_are_named(d, key):
    with pytest.raises(StudyError, match=key):
        AugmentConfig.from_dict(d)


def test_the_bounds_themselves_are_accepted():
    """Each range includes its documented bounds: hue x jitter_strength up to 0.5 (torchvision's largest hue),
    probabilities 0 and 1, a kernel fraction of 0 (no blur)."""
    assert AugmentConfig.from_dict({"hue": 0.5}).jitter_effective[3] == 0.5
    assert AugmentConfig.from_dict({"hue": 0.25, "jitter_strength": 2.0}).jitter_effective[3] == 0.5
    ok = AugmentConfig.from_dict({"grayscale_p": 1.0, "jitter_p": 0.0, "blur_p": [0.0, 1.0], "solarize_p": 1.0,
                                  "blur_kernel_fraction": 0.0})
    assert (ok.grayscale_p, ok.blur_p, ok.solarize_p, ok.blur_kernel) == (1.0, (0.0, 1.0), (1.0, 1.0), 1)
    assert AugmentConfig.from_dict({"image_size": 8}).image_size == 8


# ---------------------------------------------------------------- geometric distributions
def test_crop_boxes_match_torchvision_distribution():
    w, h, n = 500, 375, 4000
    rng = np.random.default_rng(1)
    ours = np.array([geometric.random_resized_crop_box(w, h, (0.08, 1.0), (3 / 4, 4 / 3), rng) for _ in range(n)])
    torch.manual_seed(1)
    img = torch.empty(3, h, w)
    ref = np.array([T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
    for name, f in [("area", lambda b: b[:, 2] * b[:, 3] / (w * h)), ("log ratio", lambda b: np.log(b[:, 3] / b[:, 2])),
                    ("top", lambda b: b[:, 0] / h), ("left", lambda b: b[:, 1] / w)]:
        p = stats.ks_2samp(f(ours), f(ref)).pvalue
        assert p > 1e-3, (name, p)
    assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all() and (ours[:, 2:] > 0).all()


@pytest.mark.parametrize("width, height, scale", [(100, 10, (0.9, 1.0)), (10, 100, (0.9, 1.0)), (30, 28, (1.5, 2.0)),
                                                  (100, 11, (0.9, 1.0)), (11, 100, (0.9, 1.0))])  # 14.67: 15
def test_crop_box_fallback_is_torchvisions(width, height, scale):
    """When 10 tries find no box that fits (a very wide or tall image, or an area no box can have), the box is
    torchvision's centre crop clamped to the ratio range."""
    ours = geometric.random_resized_crop_box(width, height, scale, (3 / 4, 4 / 3), np.random.default_rng(0))
    ref = T.RandomResizedCrop.get_params(torch.empty(3, height, width), list(scale), [3 / 4, 4 / 3])
    assert ours == tuple(ref)


@pytest.mark.parametrize("width, height, scale, ratio", [
    (12, 10, 44 / 120, 1.0), (12, 10, 0.5, 2.0), (10, 12, 0.5, 0.5)])
def test_crop_box_sides_are_rounded_as_torchvision(width, height, scale, ratio):
    """With area and ratio fixed the box's sides are torchvision's, sqrt(area x ratio) and sqrt(area / ratio) rounded
    to the nearest pixel (6.63 x 6.63: 7 x 7; 10.95 x 5.48: 11 x 5), not truncated (a bias the KS tests miss)."""
    ours = geometric.random_resized_crop_box(width, height, (scale, scale), (ratio, ratio), np.random.default_rng(0))
    ref = T.RandomResizedCrop.get_params(torch.empty(3, height, width), [scale, scale], [ratio, ratio])
    assert ours[2:] == tuple(ref[2:])


def test_crop_positions_cover_every_offset_and_ratio_is_width_over_height():
    """With area and ratio fixed the box is 6 wide, 5 high (ratio = w / h); top and left take every offset that
    keeps it inside the 12 x 10 image, both edges included, about equally often."""
    rng = np.random.default_rng(0)
    boxes = np.array([geometric.random_resized_crop_box(12, 10, (0.25, 0.25), (1.2, 1.2), rng) for _ in range(3000)])
    assert (boxes[:, 2] == 5).all() and (boxes[:, 3] == 6).all()
    for col, n in ((0, 6), (1, 7)):
        counts = np.bincount(boxes[:, col], minlength=n)
        assert len(counts) == n and np.abs(counts / 3000 * n - 1).max() < 0.2, (col, counts)


def test_a_crop_as_wide_as_the_image_is_drawn_at_a_random_top():
    """torchvision accepts a box whose side equals the image's (`w <= width`): with area 2/3 and ratio 2 of a
    120 x 90 image the box is 120 x 60, at every top in 0..30, never the fallback's centre crop alone."""
    rng = np.random.default_rng(0)
    boxes = [geometric.random_resized_crop_box(120, 90, (2 / 3, 2 / 3), (2.0, 2.0), rng) for _ in range(300)]
    assert {b[2:] for b in boxes} == {(60, 120)} and len({b[0] for b in boxes}) == 31
    tall = [geometric.random_resized_crop_box(90, 120, (2 / 3, 2 / 3), (0.5, 0.5), rng) for _ in range(300)]
    assert {b[2:] for b in tall} == {(120, 60)} and len({b[1] for b in tall}) == 31  # as high as the image


def test_crop_ratio_is_honoured():
    """A non-default crop_ratio reaches the per-sample draws (the default range is symmetric in log, so it alone
    passed with the ratio unread or inverted)."""
    aug = build_augment({"preset": "supervised", "image_size": 32, "crop_ratio": [2.0, 2.0]})
    boxes = [b for i in range(200) for b, _ in aug.sample_boxes(400, 300, np.random.default_rng(i))]
    assert np.abs(np.array([w / h for _, _, h, w in boxes]) - 2).max() < 0.05


def test_flip_probability_and_sample_determinism():
    aug = build_augment({"preset": "simclr", "image_size": 32})
    flips = [f for i in range(2000) for _, f in aug.sample_boxes(100, 80, np.random.default_rng(i))]
    assert abs(np.mean(flips) - 0.5) < 0.03
    img = smooth_image()
    a = aug.sample(img, np.random.default_rng(7))
    b = aug.sample(img, np.random.default_rng(7))
    c = aug.sample(img, np.random.default_rng(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], c[0])


def test_the_views_of_an_image_draw_their_own_crop_and_flip():
    """Two views of one image get independent boxes and flips (not one draw shared by both)."""
    aug = build_augment({"preset": "simclr", "image_size": 32})
    drawn = [aug.sample_boxes(100, 80, np.random.default_rng(i)) for i in range(2000)]
    assert np.mean([a[0] == b[0] for a, b in drawn]) < 0.05
    assert abs(np.mean([a[1] == b[1] for a, b in drawn]) - 0.5) < 0.05


def test_crop_scale_and_flip_p_are_honoured():
    """Non-default crop_scale and flip_p reach the per-sample draws (the defaults alone passed with either unread)."""
    aug = build_augment({"preset": "supervised", "image_size": 32, "crop_scale": [0.25, 0.5], "flip_p": 0.2})
    drawn = [d for i in range(2000) for d in aug.sample_boxes(100, 80, np.random.default_rng(i))]
    area = np.array([h * w / 8000 for (_, _, h, w), _ in drawn])
    assert area.min() > 0.23 and area.max() < 0.52 and abs(area.mean() - 0.375) < 0.01
    assert abs(np.mean([f for _, f in drawn]) - 0.2) < 0.03
    always = build_augment({"preset": "supervised", "image_size": 32, "flip_p": 1.0})
    assert all(f for i in range(50) for _, f in always.sample_boxes(100, 80, np.random.default_rng(i)))


def test_interpolation_is_the_resize_of_the_sample():
    """`interpolation` reaches the crop's resize: each sample equals torchvision's resized_crop by that filter of its
    box (a noise image, where bilinear and bicubic differ by ~2 levels on average)."""
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8))
    modes = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}
    for name, mode in modes.items():
        aug = build_augment({"preset": "supervised", "image_size": 16, "flip_p": 0.0, "interpolation": name})
        ours = aug.sample(noise, np.random.default_rng(1))[0]
        (box, _), = aug.sample_boxes(120, 90, np.random.default_rng(1))
        ref = TF.pil_to_tensor(TF.resized_crop(noise, *box, [16, 16], interpolation=mode, antialias=True))
        diff = (ours.int() - ref.int()).abs()
        assert diff.max() <= 2 and diff.float().mean() < 0.1, name


def test_a_fractional_box_is_pils_resize_of_that_box():
    """A box with a fractional coordinate (the eval centre crop, crops of a reduced decode) is resized by PIL from
    exactly that box, its height and width in their places (not cropped at whole pixels)."""
    arr = np.asarray(smooth_image())
    for box in ((10.5, 20, 50, 61), (10, 20, 50.5, 61), (7, 3, 40, 66.25)):
        top, left, h, w = box
        ref = Image.fromarray(arr).resize((16, 16), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
        ours = geometric.crop_resize(arr, box, 16, False, "bilinear")
        assert torch.equal(ours, torch.from_numpy(np.array(ref)).permute(2, 0, 1)), box


def test_flip_mirrors_the_same_crop():
    arr = np.asarray(smooth_image())
    for box in ((10, 20, 50, 60), (10.5, 20.25, 50, 60.5)):  # torch's kernels, PIL's for a fractional box
        plain = geometric.crop_resize(arr, box, 32, False, "bilinear")
        flipped = geometric.crop_resize(arr, box, 32, True, "bilinear")
        assert torch.equal(plain.flip(-1), flipped)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("box", [(10, 20, 50, 60), (0, 0, 90, 120), (30, 7, 13, 21), (30, 7, 40, 40)])
def test_crop_resize_equals_torchvision_on_pil(interpolation, box):
    """torch's uint8 antialiased kernels against torchvision's resized_crop on a PIL image (RandomResizedCrop's
    work: crop, then PIL's antialiased resize), downscaling, upscaling and both."""
    img = smooth_image()
    mode = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[interpolation]
    ref = np.asarray(TF.resized_crop(img, *box, [32, 32], interpolation=mode, antialias=True))
    ours = geometric.crop_resize(np.asarray(img), box, 32, False, interpolation)
    assert ours.shape == (3, 32, 32) and ours.is_contiguous()
    diff = np.abs(ours.permute(1, 2, 0).numpy().astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.1


@pytest.mark.parametrize("preset, size", [("simclr", 224), ("simclr", 28), ("byol", 32), ("supervised", 16),
                                          ("eval", 28)])
def test_shapes_and_dtypes(preset, size):
    aug = build_augment({"preset": preset, "image_size": size})
    views = batch_of(aug, 3)
    assert len(views) == aug.num_views == (2 if preset in ("simclr", "byol") else 1)
    assert all(v.dtype == torch.uint8 and v.shape == (3, 3, size, size) for v in views)
    out = aug.batch(views, torch.Generator().manual_seed(0))
    assert all(o.dtype == torch.float32 and o.shape == (3, 3, size, size) and torch.isfinite(o).all() for o in out)


def test_gray_source_28px_stays_gray():
    """A 1-channel image (Fashion-MNIST-like) made RGB: every view has equal channels after all the work."""
    rng = np.random.default_rng(0)
    digit = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").convert("RGB")
    aug = build_augment({"preset": "simclr", "image_size": 28})
    views = [torch.stack([aug.sample(digit, np.random.default_rng(i))[v] for i in range(16)]) for v in range(2)]
    for o in aug.batch(views, torch.Generator().manual_seed(1)):
        x = o * torch.tensor(aug.cfg.std).view(1, 3, 1, 1) + torch.tensor(aug.cfg.mean).view(1, 3, 1, 1)
        assert torch.allclose(x[:, 0], x[:, 1], atol=1e-5) and torch.allclose(x[:, 1], x[:, 2], atol=1e-5)


def test_eval_matches_resize_center_crop():
    img = smooth_image(150, 100)
    aug = build_augment({"preset": "eval", "image_size": 64})
    ours = aug.sample(img, np.random.default_rng(0))[0]
    ref = TF.pil_to_tensor(TF.center_crop(TF.resize(img, 73), 64))  # 73 = round(64 * 256 / 224)
    assert (ours.int() - ref.int()).abs().float().mean() < 2.0
    out = aug.batch([ours[None]], torch.Generator())[0]
    expect = TF.normalize(ours[None].float() / 255, list(aug.cfg.mean), list(aug.cfg.std))
    assert torch.allclose(out, expect, atol=1e-5)


@pytest.mark.parametrize("ratio", [1.0, 1.5])
def test_eval_resize_ratio_is_honoured(ratio):
    """Resize(round(64 x ratio)) + CenterCrop(64) for a non-default ratio; a ramp image, so a crop of the wrong
    extent is tens of levels off (the default 256/224 in place of 1.0: 18 levels at the edges)."""
    yy, xx = np.mgrid[0:100, 0:150]
    ramp = Image.fromarray(np.stack([xx * 255 // 149, yy * 255 // 99, np.full_like(xx, 128)], -1).astype(np.uint8))
    ours = build_augment({"preset": "eval", "image_size": 64, "resize_ratio": ratio}).sample(
        ramp, np.random.default_rng(0))[0]
    ref = TF.pil_to_tensor(TF.center_crop(TF.resize(ramp, round(64 * ratio)), 64))
    assert (ours.int() - ref.int()).abs().max() <= 2


def test_the_eval_crop_box_is_torchvisions_resize_of_the_rounded_short_side():
    """Resize(round(96 x 256/224) = 110) + CenterCrop(96) of a 150 x 100 image (109.7: truncated, 109):
    resized 165 x 110, the crop at (top, left) = (round(7.0), round(34.5)) = (7, 34) of the resized image."""
    box = geometric.center_crop_box(150, 100, 96, 256 / 224)
    assert box == pytest.approx((7 * 100 / 110, 34 * 150 / 165, 96 * 100 / 110, 96 * 150 / 165))


@pytest.mark.parametrize("width, height, size", [(100, 150, 64), (185, 100, 64), (100, 185, 64)])
def test_the_eval_crop_box_truncates_the_long_side_and_rounds_the_offsets_half_to_even(width, height, size):
    """torchvision's Resize(73) truncates the long side, int(73 x long / short) (100 x 150: 109, not 110), and
    CenterCrop's offsets are round((side - 64) / 2), half to even (185 x 100: 135 wide, round(35.5) = 36, not 35)."""
    rh, rw = T.Resize(round(size * 256 / 224))(torch.zeros(1, height, width)).shape[1:]  # torchvision's own sizes
    expect = (round((rh - size) / 2) * height / rh, round((rw - size) / 2) * width / rw, size * height / rh,
              size * width / rw)
    assert geometric.center_crop_box(width, height, size, 256 / 224) == pytest.approx(expect)


def test_draft_reduces_as_pil_and_only_as_far_as_every_crop_side_allows():
    """The reduction is PIL's `Image.draft` choice for the scale, and the scale is set by the shorter side of the
    most demanding box (a 600 x 100 box at 64 px allows no reduction, though its long side would allow 1/8)."""
    for width, height in ((800, 600), (409, 300)):
        buf = io.BytesIO()
        Image.new("RGB", (width, height)).save(buf, "JPEG")
        for r in (1.0, 0.6, 0.5, 0.49, 0.3, 0.25, 0.24, 0.13, 0.125, 0.12, 0.05):
            pil = Image.open(io.BytesIO(buf.getvalue()))
            pil.draft("RGB", (math.ceil(width * r), math.ceil(height * r)))
            d = geometric.draft_denominator(width, height, r)
            assert pil.size == (math.ceil(width / d), math.ceil(height / d)), (width, height, r)
    assert geometric.draft_scale([(0, 0, 600, 100)], 64) == 0.64
    assert geometric.draft_scale([(0, 0, 100, 600), (0, 0, 512, 512)], 64) == 0.64


def test_jpeg_draft_decodes_at_reduced_scale_when_the_crop_allows():
    big = smooth_image(800, 600)
    aug = build_augment({"preset": "eval", "image_size": 64})
    lazy = jpeg(big)
    boxes = [b for b, _ in aug.sample_boxes(800, 600, np.random.default_rng(0))]
    decoded, mapped = geometric.decode_for_boxes(lazy, boxes, 64, True)
    assert decoded.shape == (75, 100, 3)  # 1/8 scale: the centre crop (526 px of the source) still spans >= 64 px
    assert all(min(h, w) >= 64 for _, _, h, w in mapped)
    drafted = aug.sample(jpeg(big), np.random.default_rng(0))[0]
    full = build_augment({"preset": "eval", "image_size": 64, "jpeg_draft": False}).sample(
        jpeg(big), np.random.default_rng(0))[0]
    assert (drafted.int() - full.int()).abs().float().mean() < 3.0
    decoded, _ = geometric.decode_for_boxes(jpeg(big), [(0, 0, 300, 300), (0, 0, 100, 100)], 64, True)
    assert decoded.shape == (600, 800, 3)  # one crop under 2 x 64 px forbids any reduction


def test_jpeg_draft_false_decodes_at_full_scale():
    """`jpeg_draft: false` gives the view of the fully decoded image (a reduced decode of this blocky noise image is
    ~10 levels off on average)."""
    noise = np.random.default_rng(0).integers(0, 256, (75, 100, 3), dtype=np.uint8)
    big = Image.fromarray(noise).resize((800, 600), Image.Resampling.NEAREST)
    aug = build_augment({"preset": "eval", "image_size": 64, "jpeg_draft": False})
    lazy = aug.sample(jpeg(big), np.random.default_rng(0))[0]
    full = aug.sample(jpeg(big).convert("RGB"), np.random.default_rng(0))[0]
    assert (lazy.int() - full.int()).abs().float().mean() < 0.5  # two libjpeg-turbo builds: within 2 levels


@pytest.mark.parametrize("width, size, d", [(400, 16, 8), (409, 16, 8), (409, 80, 2)])
def test_a_reduced_decode_maps_boxes_by_its_scale_when_the_side_is_no_multiple_of_it(width, size, d):
    """A 1/8 decode of 409 px is 52 px of 8 source pixels each: a box at x maps to x / 8 (not x * 52 / 409, which
    shifts a crop at the right edge by most of a decoded pixel); likewise x / 2 for a 1/2 decode (205 px)."""
    yy, xx = np.mgrid[0:300, 0:width]
    ramp = np.stack([xx * 255 // (width - 1), yy * 255 // 299, np.full_like(xx, 128)], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "JPEG", quality=98)
    box = (100, width - 200, 200, 200)  # at the right edge
    decoded, (mapped,) = geometric.decode_for_boxes(Image.open(io.BytesIO(buf.getvalue())), [box], size, True)
    assert decoded.shape[1] == math.ceil(width / d) and mapped == tuple(v / d for v in box)
    full = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    drafted = geometric.crop_resize(decoded, mapped, 16, False, "bilinear")[0].float()
    reference = geometric.crop_resize(full, box, 16, False, "bilinear")[0].float()
    assert abs(float((drafted - reference).mean())) < 1.0  # red follows x: 3.4 levels off with the old mapping


# ---------------------------------------------------------------- photometric parameter distributions
def test_photometric_draws_follow_the_definitions():
    aug = build_augment({"preset": "simclr"})
    n = 20000
    p = aug.draw(n, 0, torch.Generator().manual_seed(0))
    for key, prob in (("jitter", 0.8), ("gray", 0.2), ("blur", 0.5), ("solarize", 0.0)):
        assert abs(p[key].float().mean().item() - prob) < 0.015, key
    for key, (lo, hi) in (("brightness", (0.2, 1.8)), ("contrast", (0.2, 1.8)), ("saturation", (0.2, 1.8)),
                          ("hue", (-0.2, 0.2)), ("sigma", (0.1, 2.0))):
        v = p[key].numpy()
        assert v.min() >= lo and v.max() <= hi
        assert stats.kstest(v, "uniform", args=(lo, hi - lo)).pvalue > 1e-3, key
    perms = {tuple(r) for r in p["order"].tolist()}
    assert len(perms) == 24
    first = np.bincount(p["order"][:, 0].numpy(), minlength=4) / n
    assert np.abs(first - 0.25).max() < 0.015
    byol = build_augment({"preset": "byol"})
    g = torch.Generator().manual_seed(1)
    v0, v1 = byol.draw(n, 0, g), byol.draw(n, 1, g)
    assert v0["blur"].all() and abs(v1["blur"].float().mean().item() - 0.1) < 0.01
    assert not v0["solarize"].any() and abs(v1["solarize"].float().mean().item() - 0.2) < 0.015
    assert v0["brightness"].min() >= 0.6 and v0["brightness"].max() <= 1.4 and v0["hue"].abs().max() <= 0.1


def test_jitter_factors_stay_non_negative_above_strength_one():
    """torchvision's range for a factor of strength s > 1 is [0, 1 + s], not [1 - s, 1 + s]: a negative contrast or
    saturation factor would invert the image about its mean or its grey."""
    aug = build_augment({"preset": "simclr", "brightness": 1.5, "contrast": 1.5, "saturation": 1.5})
    p = aug.draw(20000, 0, torch.Generator().manual_seed(0))
    for key in ("brightness", "contrast", "saturation"):
        v = p[key].numpy()
        assert v.min() >= 0 and v.max() <= 2.5
        assert stats.kstest(v, "uniform", args=(0, 2.5)).pvalue > 1e-3, key


def test_the_per_image_decisions_are_independent():
    """Jitter, grayscale, blur and solarize are decided by independent draws (a shared uniform keeps each rate but,
    e.g., grays only jittered images)."""
    p = build_augment({"preset": "byol"}).draw(40000, 1, torch.Generator().manual_seed(0))
    keys = ("jitter", "gray", "blur", "solarize")
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            both = (p[a] & p[b]).float().mean().item()
            assert abs(both - p[a].float().mean().item() * p[b].float().mean().item()) < 0.01, (a, b)


def test_all_per_image_draws_are_uncorrelated():
    """Every drawn quantity (decisions, the four factors, sigma, the jitter order) has its own uniform: a column
    reused for two of them keeps both marginals but correlates them."""
    p = build_augment({"preset": "byol"}).draw(40000, 1, torch.Generator().manual_seed(0))
    cols = {k: p[k].float() for k in ("jitter", "gray", "blur", "solarize", "brightness", "contrast", "saturation",
                                      "hue", "sigma")}
    for stage in (0, 3):
        for op in range(4):
            cols[f"order{stage}={op}"] = (p["order"][:, stage] == op).float()
    names = list(cols)
    r = torch.corrcoef(torch.stack([cols[k] for k in names]))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            if not (a.startswith("order") and names[j].startswith("order")):  # one permutation: dependent
                assert abs(r[i, j].item()) < 0.03, (a, names[j], r[i, j].item())


def test_each_jitter_factor_has_its_own_range():
    """Distinct strengths per part: each factor is uniform on its own range (equal strengths hid a swapped bound)."""
    aug = build_augment({"preset": "simclr", "brightness": 0.5, "contrast": 0.3, "saturation": 0.9, "hue": 0.05})
    p = aug.draw(20000, 0, torch.Generator().manual_seed(0))
    for key, (lo, hi) in (("brightness", (0.5, 1.5)), ("contrast", (0.7, 1.3)), ("saturation", (0.1, 1.9)),
                          ("hue", (-0.05, 0.05))):
        v = p[key].numpy()
        assert v.min() >= lo and v.max() <= hi
        assert stats.kstest(v, "uniform", args=(lo, hi - lo)).pvalue > 1e-3, key


def test_batch_is_deterministic_in_the_generator():
    aug = build_augment({"preset": "simclr", "image_size": 32})
    views = batch_of(aug, 8)
    a = aug.batch(views, torch.Generator().manual_seed(3))
    b = aug.batch(views, torch.Generator().manual_seed(3))
    c = aug.batch(views, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], c[0])


@pytest.mark.parametrize("size", [16, 40])  # the batched path, the per-image path (> CPU_BATCHED_MAX_PIXELS)
def test_solarize_alone_at_its_threshold(size):
    """An augmentation whose only operation is solarize (p 1) applies it, at `solarize_threshold`, on both paths."""
    aug = build_augment({"preset": "eval", "image_size": size, "solarize_p": 1.0, "solarize_threshold": 0.8,
                         "mean": [0, 0, 0], "std": [1, 1, 1]})
    x = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = aug.batch([x], torch.Generator().manual_seed(1))[0]
    assert torch.allclose(out, TF.solarize(x.float() / 255, 0.8), atol=1e-5)


@pytest.mark.parametrize("size", [16, 40])  # the batched path, the per-image path (> CPU_BATCHED_MAX_PIXELS)
def test_grayscale_alone_on_both_paths(size):
    """An augmentation whose only operation is grayscale (p 1) applies it on both paths (on the per-image path an
    image that takes grayscale and nothing else is not one that only needs normalising)."""
    aug = build_augment({"preset": "eval", "image_size": size, "grayscale_p": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]})
    x = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = aug.batch([x], torch.Generator().manual_seed(1))[0]
    assert torch.allclose(out, TF.rgb_to_grayscale(x.float() / 255, num_output_channels=3), atol=1e-5)


def test_per_image_path_skips_the_jitter_parts_of_strength_zero():
    """Parts of strength 0 are the identity on the per-image path as on the batched one (their drawn factor, 0, is
    never applied: brightness 0 would blacken the image)."""
    aug = build_augment({"preset": "simclr", "image_size": 40, "brightness": 0.0, "hue": 0.0, "jitter_p": 1.0})
    x = batch_of(aug, 8)[0]
    p = aug.draw(8, 0, torch.Generator().manual_seed(0))
    assert (aug._per_image(x, p, 0) - aug._batched(x, p, 0)).abs().max() < 1e-4


@pytest.mark.parametrize("size", [30, 36])  # kernel 3 on both paths: batched (<= 32 x 32 px), per-image
def test_blur_alone_on_the_second_view_only(size):
    """An augmentation whose only operation is blur with p 0 on view 1 and p 1 on view 2 leaves view 1 as it is and
    blurs view 2 with torchvision's 3-tap kernel, on both paths."""
    aug = build_augment({"preset": "simclr", "image_size": size, "jitter_p": 0.0, "grayscale_p": 0.0,
                         "blur_p": [0.0, 1.0], "blur_sigma": [1.0, 1.0], "mean": [0, 0, 0], "std": [1, 1, 1]})
    assert aug.cfg.blur_kernel == 3
    x = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = aug.batch([x, x], torch.Generator().manual_seed(1))
    assert torch.allclose(out[0], x.float() / 255, atol=1e-6)
    assert torch.allclose(out[1], TF.gaussian_blur(x.float() / 255, [3, 3], [1.0, 1.0]), atol=1e-5)


@pytest.mark.parametrize("size", [40, 96])  # the batched path, and the per-image one a CPU takes for larger images
def test_the_two_views_photometric_draws_are_their_own(size):
    """One crop given as both views comes out as two images: each view draws its own jitter, grayscale and blur."""
    aug = build_augment({"preset": "simclr", "image_size": size})
    x = batch_of(aug, 16)[0]
    a, b = aug.batch([x, x.clone()], torch.Generator().manual_seed(0))
    differ = [not torch.equal(a[i], b[i]) for i in range(16)]
    assert sum(differ) >= 12, differ


def test_per_image_and_batched_paths_agree():
    """The CPU per-image path and the batched path (the one CUDA runs) compute the same images."""
    for cfg in ({"preset": "simclr"}, {"preset": "byol"},  # and every image blurred, then solarized
                {"preset": "byol", "jitter_p": 0.5, "blur_p": 1.0, "solarize_p": 1.0}):
        aug = build_augment({**cfg, "image_size": 40})
        views = batch_of(aug, 12)
        for view, x in enumerate(views):
            p = aug.draw(12, view, torch.Generator().manual_seed(view))
            a, b = aug._per_image(x, p, view), aug._batched(x, p, view)
            assert (a - b).abs().max() < 1e-4


# ---------------------------------------------------------------- photometric operations vs torchvision
@pytest.fixture()
def images():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 24, 24)
    x[0, :, :4] = 0.5  # grey pixels, and saturated ones
    x[1, 0] = 1.0
    return x


@pytest.mark.parametrize("name, ref", [
    ("brightness", TF.adjust_brightness), ("contrast", TF.adjust_contrast), ("saturation", TF.adjust_saturation)])
@pytest.mark.parametrize("f", [0.2, 0.7, 1.0, 1.6])
def test_jitter_parts_equal_torchvision(images, name, ref, f):
    ours = getattr(photometric, name)(images.clone(), f)
    assert torch.allclose(ours, torch.stack([ref(i, f) for i in images]), atol=1e-5)


@pytest.mark.parametrize("f", [-0.5, -0.2, -0.03, 0.0, 0.11, 0.2, 0.5])
def test_hue_equals_torchvision(images, f):
    ours = photometric.hue(images.clone(), f)
    assert torch.allclose(ours, torch.stack([TF.adjust_hue(i, f) for i in images]), atol=1e-4)


def test_batched_factors_equal_scalar_factors(images):
    f = torch.tensor([0.3, 1.0, 1.5, 0.9])
    for name in ("brightness", "contrast", "saturation", "hue"):
        h = f - 1 if name == "hue" else f
        batched = getattr(photometric, name)(images.clone(), h.view(-1, 1, 1, 1))
        single = torch.cat([getattr(photometric, name)(images[i:i + 1].clone(), h[i].item()) for i in range(4)])
        assert torch.allclose(batched, single, atol=1e-5), name


def test_grayscale_and_solarize_equal_torchvision(images):
    assert torch.allclose(photometric.grayscale(images), TF.rgb_to_grayscale(images, num_output_channels=3),
                          atol=1e-6)
    assert torch.equal(photometric.solarize(images, 0.5), TF.solarize(images, 0.5))


@pytest.mark.parametrize("sigma", [0.1, 0.6, 1.3, 2.0])
@pytest.mark.parametrize("size", [3, 7, 23])
def test_blur_equals_torchvision(sigma, size):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 40, 36)
    ref = torch.stack([TF.gaussian_blur(i, [size, size], [sigma, sigma]) for i in x])
    batched = photometric.blur(x, torch.full((2,), sigma), size)
    assert torch.allclose(batched, ref, atol=1e-5)


def test_blur_kernel_truncation_is_below_a_uint8_level():
    assert photometric.blur_radius(2.0, 23) == 8 and photometric.blur_radius(0.5, 23) == 2
    for sigma in np.linspace(0.1, 2.0, 96):
        w = photometric.gaussian_kernel(torch.tensor([float(sigma)]), 23)[0].double()
        r = photometric.blur_radius(float(sigma), 23)
        assert w.sum() - w[11 - r:11 + r + 1].sum() < 1.5e-4 and math.isclose(w.sum().item(), 1.0, rel_tol=1e-6)


def test_full_jitter_effect_close_to_torchvision_colorjitter():
    """With fixed factors and order, our jitter stage equals torchvision's ColorJitter functional chain."""
    torch.manual_seed(2)
    x = torch.rand(1, 3, 20, 20)
    ours = x.clone()
    order, factors = (3, 0, 2, 1), (1.4, 0.6, 1.7, -0.15)
    ops = (photometric.brightness, photometric.contrast, photometric.saturation, photometric.hue)
    refs = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    ref = x[0].clone()
    for op in order:
        ours = ops[op](ours, factors[op])
        ref = refs[op](ref, factors[op])
    assert torch.allclose(ours[0], ref, atol=1e-4)


# ---------------------------------------------------------------- the per-image CPU path (OpenCV) vs torchvision
def colour(x: torch.Tensor) -> ColourImage:
    """A ColourImage holding the float image x (3 x H x W in [0, 1]) exactly."""
    img = ColourImage.from_planes(np.zeros(tuple(x.shape), np.uint8))
    img.set(np.ascontiguousarray(x.permute(1, 2, 0).numpy()))
    return img


def value(img: ColourImage) -> torch.Tensor:
    """Its 3 x H x W value (a grey image holds one channel)."""
    x = torch.from_numpy(img.pixels().copy())
    return x.expand(3, *x.shape) if x.dim() == 2 else x.permute(2, 0, 1)


TV_JITTER = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


@pytest.mark.parametrize("op, f", [(op, f) for op in range(3) for f in (0.2, 0.7, 1.0, 1.6)]
                         + [(3, f) for f in (-0.5, -0.2, 0.0, 0.11, 0.5)])
def test_cv_jitter_parts_equal_torchvision(images, op, f):
    for x in images:
        img = colour(x)
        JITTER[op](img, f)
        assert torch.allclose(value(img), TV_JITTER[op](x, f), atol=1e-5), (op, f)


@pytest.mark.parametrize("seed", range(6))
def test_cv_chains_equal_torchvision(images, seed):
    """Random orders and factors (> 1 clamps, <= 1 stays pending), grayscale, blur and solarize after them."""
    rng = np.random.default_rng(seed)
    for x in images:
        factors = [*rng.uniform(0.2, 1.8, 3), rng.uniform(-0.5, 0.5)]
        img, ref = colour(x), x.clone()
        for op in rng.permutation(4):
            JITTER[op](img, float(factors[op]))
            ref = TV_JITTER[op](ref, float(factors[op]))
        if seed % 2:
            img.grayscale()
            ref = TF.rgb_to_grayscale(ref, num_output_channels=3)
        img.blur(1.3, 7)
        ref = TF.gaussian_blur(ref, [7, 7], [1.3, 1.3])
        img.solarize(0.5)
        ref = TF.solarize(ref, 0.5)
        assert torch.allclose(value(img), ref, atol=5e-4)


def test_cv_from_uint8_and_normalised_output():
    u8 = torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    img = ColourImage.from_planes(u8.numpy())
    img.contrast(1.4)
    out = torch.empty(3, 20, 24)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
    img.normalised_into(out.numpy(), (1 / std).view(3).numpy(), (-mean / std).view(3).numpy())
    expect = (TF.adjust_contrast(u8.float() / 255, 1.4) - mean) / std
    assert torch.allclose(out, expect, atol=1e-5)


def test_cv_grey_image_is_held_as_one_channel_and_equals_torchvision(images):
    """After grayscale the value is held as one H x W channel once its pixels are needed (a third of the work after
    it); the operations that follow, hue (the identity on grey) included, and the normalised planes still equal
    torchvision's."""
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
    for x in images:
        img, ref = colour(x), TF.rgb_to_grayscale(x, num_output_channels=3)
        img.grayscale()
        for op, f in ((3, 0.3), (0, 1.2), (1, 1.4), (2, 0.5)):
            JITTER[op](img, f)
            ref = TV_JITTER[op](ref, f)
        img.blur(1.0, 3)  # radius 1: the whole 3-tap kernel
        img.solarize(0.5)
        ref = TF.solarize(TF.gaussian_blur(ref, [3, 3], [1.0, 1.0]), 0.5)
        assert img.x.ndim == 2
        out = torch.empty(3, *x.shape[1:])
        img.normalised_into(out.numpy(), (1 / std).view(3).numpy(), (-mean / std).view(3).numpy())
        assert torch.allclose(out, (ref - mean) / std, atol=1e-4)


def test_solarize_inverts_a_pixel_equal_to_its_threshold():
    """Pixels >= threshold are inverted (torchvision's rule) on both paths, checked at 0.25: a pixel at 0.5 is its
    own inverse, so the 0.5 checks above cannot tell >= from >."""
    x = torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1).expand(3, 2, 2).contiguous()
    expect = TF.solarize(x, 0.25)
    assert expect[1, 0, 0].item() == 0.75
    assert torch.equal(photometric.solarize(x[None], 0.25)[0], expect)
    img = colour(x)
    img.solarize(0.25)
    assert torch.equal(value(img), expect)


@pytest.mark.parametrize("sigma", [0.1, 0.6, 1.3, 2.0])
@pytest.mark.parametrize("size", [3, 7, 23])
def test_cv_blur_equals_torchvision_within_the_truncation(sigma, size):
    torch.manual_seed(1)
    x = torch.rand(3, 40, 36)
    img = colour(x)
    img.blur(sigma, size)
    assert torch.allclose(value(img), TF.gaussian_blur(x, [size, size], [sigma, sigma]), atol=5e-4)


@pytest.mark.parametrize("sigma, size", [(0.6, 23), (1.3, 23), (2.0, 23), (1.3, 7)])  # the last: every tap
def test_cv_blur_taps_are_torchvisions_central_taps(sigma, size):
    """The truncated kernel keeps torchvision's weights, normalised over all `size` taps (the skipped tails, < 1.5e-4
    of the mass, are lost), not its central taps renormalised to sum 1."""
    r = photometric.blur_radius(sigma, size)
    ref = photometric.gaussian_kernel(torch.tensor([sigma]), size)[0].numpy()
    taps = gaussian_taps(sigma, size, r)
    assert taps.shape == (2 * r + 1,) and np.allclose(taps, ref[size // 2 - r:size // 2 + r + 1], rtol=1e-5, atol=0)


# ---------------------------------------------------------------- decoding
def test_decode_equals_pil_and_a_truncated_jpeg_still_raises():
    big = smooth_image(300, 200)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    ours, _ = geometric.decode_for_boxes(Image.open(io.BytesIO(data)), [(0, 0, 200, 300)], 64, False)
    pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    diff = np.abs(ours.astype(int) - pil.astype(int))
    assert ours.shape == pil.shape and diff.max() <= 2 and diff.mean() < 0.1  # two libjpeg-turbo builds
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90; ignored, as PIL and torchvision ignore it
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    ours, _ = geometric.decode_for_boxes(Image.open(io.BytesIO(buf.getvalue())), [(0, 0, 200, 300)], 64, False)
    assert ours.shape == (200, 300, 3) and np.abs(ours.astype(int) - pil.astype(int)).mean() < 0.1
    with pytest.raises(OSError, match="truncated"):
        geometric.decode_for_boxes(Image.open(io.BytesIO(data[: len(data) // 2])), [(0, 0, 200, 300)], 64, False)


@pytest.mark.parametrize("box, d", [((0, 0, 600, 800), 8), ((0, 0, 200, 200), 2)])
def test_a_jpeg_with_bytes_after_its_end_is_decoded_by_pil_at_the_reduced_scale(box, d):
    """A JPEG followed by other bytes (no EOI at the end of the file) is left to PIL, which still decodes it at the
    reduction every box allows (`Image.draft`), as OpenCV does the clean file, boxes mapped by that scale."""
    buf = io.BytesIO()
    smooth_image(800, 600).save(buf, "JPEG", quality=90)
    clean, _ = geometric.decode_for_boxes(Image.open(io.BytesIO(buf.getvalue())), [box], 64, True)
    trailing = Image.open(io.BytesIO(buf.getvalue() + b"\x00" * 16))
    decoded, (mapped,) = geometric.decode_for_boxes(trailing, [box], 64, True)
    assert decoded.shape == clean.shape == (600 // d, 800 // d, 3) and mapped == tuple(v / d for v in box)
    assert np.abs(decoded.astype(int) - clean.astype(int)).mean() < 1.0
