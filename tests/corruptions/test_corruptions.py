import numpy as np
import pytest
from PIL import Image

from study.corruptions import CORRUPTIONS, Corruption, CorruptionSpec, apply_corruption, parse_corruption
from study.corruptions.base import Param, register
from study.errors import StudyError
from study.manifests.store import check_name


def photo(seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size[0])[None, :, None] * np.ones((size[1], 1, 3))
    return Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


def test_registry_has_the_papers_four():
    assert {"downsample", "jpeg", "none", "salt_pepper"} <= set(CORRUPTIONS.names())


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_every_registered_corruption_has_one_spelling_and_names_a_manifest(name):
    """What a grid and `study manifest corrupt` ask of any corruption, a new one included: its canonical spelling
    (defaults written out) reads back as itself, and `<base>.<slug>` is a manifest name."""
    spec = parse_corruption(name)
    assert parse_corruption(str(spec)) == spec and str(parse_corruption(str(spec))) == str(spec)
    assert check_name(f"base.{spec.slug}")


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_every_registered_corruption_documents_itself(name):
    """docs/contributing.md: a corruption's module docstring, given to `Corruption` as its `doc`, says what it does
    and where its defaults come from; a file without one registered `doc=None` and passed every other test."""
    corruption = CORRUPTIONS.get(name)
    assert isinstance(corruption.doc, str) and corruption.doc.strip(), \
        f"corruption {name!r} ({corruption.apply.__module__}): no doc (pass its module's __doc__ to Corruption)"


def _ident(img, p, rng):
    return img


def _positive(v):
    if v <= 0:
        raise ValueError("must be > 0")


@pytest.fixture
def unregistered():
    """The names registered by a test, removed from CORRUPTIONS afterwards (whether or not it registered them)."""
    names = []
    yield names
    for name in names:
        CORRUPTIONS.unregister(name)


@pytest.mark.parametrize("param, message", [
    (Param(25, float), r"default 25 is spelled '25', which parses as 25.0: give the default as the type"),
    (Param(-1.0, float, _positive), r"default -1.0 is refused \(must be > 0\)"),
    (Param("a,b", str), r"default 'a,b' holds one of : , ="),
])
def test_a_corruption_whose_default_would_not_read_back_is_refused_when_registered(unregistered, param, message):
    """`Param(25, float)` spelled one corruption two ways (`x`: sigma=25, `x:sigma=25`: sigma=25.0), so one grid
    made two jobs and two manifests of it; a default its check refuses ran unchecked."""
    unregistered.append("example_noise")
    with pytest.raises(ValueError, match=r"corruption 'example_noise': parameter 'sigma': " + message):
        register(Corruption("example_noise", {"sigma": param}, _ident))
    assert "example_noise" not in CORRUPTIONS
    with pytest.raises(ValueError, match=r"parameter 'a b': a parameter name is letters, digits and _"):
        register(Corruption("example_noise", {"a b": Param(1, int)}, _ident))
    with pytest.raises(ValueError, match=r"corruption name 'example noise': letters, digits and _ \. - only"):
        register(Corruption("example noise", {}, _ident))
    register(Corruption("example_noise", {"sigma": Param(25.0, float, _positive)}, _ident))
    assert str(parse_corruption("example_noise")) == str(parse_corruption("example_noise:sigma=25")) == \
        "example_noise:sigma=25.0"


def test_a_corruption_label_names_one_of_its_parameters(unregistered):
    """A figure names a corruption by its label's main parameter: a label naming no parameter of it is refused when
    it is registered, not when a report is drawn."""
    unregistered.append("example_noise")
    with pytest.raises(ValueError, match=r"corruption 'example_noise': label names parameter 'sigm', which it does "
                                         r"not have \(its parameters: sigma\)"):
        register(Corruption("example_noise", {"sigma": Param(0.5, float)}, _ident, label=("sigm", str)))
    assert "example_noise" not in CORRUPTIONS


def test_a_taken_corruption_name_names_both_files_and_a_reloaded_one_registers_again():
    """A corruption is an instance, not a function or class: a second one under a taken name was refused with the
    repr of both (no module, no file), and the same module reloaded (a notebook's autoreload) was refused too."""
    import importlib

    import study.corruptions.jpeg as jpeg_module

    with pytest.raises(ValueError, match=r"^corruption 'jpeg' registered twice: by study\.corruptions\.jpeg\.jpeg "
                                         rf"and by {__name__}\._ident$"):
        register(Corruption("jpeg", {}, _ident))
    original = CORRUPTIONS.get("jpeg")
    assert original.apply is jpeg_module.jpeg
    try:
        importlib.reload(jpeg_module)
        assert CORRUPTIONS.get("jpeg").apply is jpeg_module.jpeg is not original.apply
    finally:  # the original object back, as the other tests imported it
        CORRUPTIONS.unregister("jpeg")
        register(original)


@pytest.mark.parametrize("label, message", [
    (("sigma", "blur sigma {}"), r"label's text 'blur sigma \{\}' is no function of the value \(give "
                                 r"'blur sigma \{\}'\.format\)"),
    (("sigma", lambda v: v * 2), r"label's text gives 1\.0 for the default 0\.5, not a string"),
])
def test_a_corruption_label_whose_text_would_not_name_it_is_refused_when_registered(unregistered, label, message):
    """The label's text is a function of the main parameter's value (the figure calls it): a format string (the
    spelling of the figure's former table) or a function that gives no string is refused when registered, not
    when a report is drawn."""
    unregistered.append("example_noise")
    with pytest.raises(ValueError, match=r"^corruption 'example_noise': " + message):
        register(Corruption("example_noise", {"sigma": Param(0.5, float)}, _ident, label=label))
    assert "example_noise" not in CORRUPTIONS


@pytest.mark.parametrize("text, canonical, slug", [
    ("downsample:factor=2", "downsample:factor=2", "downsample-factor2"),
    ("downsample", "downsample:factor=2", "downsample-factor2"),
    ("downsample:factor=4,interpolation=bilinear", "downsample:factor=4,interpolation=bilinear",
     "downsample-factor4-interpolationbilinear"),
    ("jpeg:quality=30", "jpeg:quality=30", "jpeg-quality30"),
    ("salt_pepper:fraction=0.05", "salt_pepper:fraction=0.05", "salt_pepper-fraction0.05"),
    ("salt_pepper:fraction=.10", "salt_pepper:fraction=0.1", "salt_pepper-fraction0.1"),  # one value, one job
    ("none", "none", "none"),
])
def test_parse_canonical_and_slug(text, canonical, slug):
    spec = parse_corruption(text)
    assert isinstance(spec, CorruptionSpec)
    assert str(spec) == canonical and spec.slug == slug
    assert parse_corruption(str(spec)) == spec


@pytest.mark.parametrize("text, message", [
    ("no_such_corruption", "unknown corruption 'no_such_corruption'"),  # not `blur`: one may be added
    ("jpeg:q=5", "unknown parameter 'q'"),
    ("jpeg:quality=0", "bad value"),
    ("downsample:factor=1", "bad value"),
    ("downsample:interpolation=cubic", "bad value"),
    ("salt_pepper:fraction=1.5", "bad value"),
    ("jpeg:quality", "key=value"),
    ("jpeg:qualty=5", "unknown parameter 'qualty' of jpeg .did you mean 'quality'.."),
    ("salt_pepper:fraction=nan", "bad value 'nan' for fraction: not a finite number"),
    ("downsample:factor=inf", "bad value 'inf' for factor"),
    ("jpeg:quality=96", "bad value"),
    ("salt_pepper:fraction=-0.1", "bad value"),
    ("salt_pepper:fraction=-0.0", r"fraction 0 leaves the images clean"),
    ("salt_pepper:fraction=0", r"fraction 0 leaves the images clean: a grid's corruption none reads the clean"),
    ("jpeg:quality=5,quality=6", "given twice"),
    ("jpeg:quality=abc", "^corruption 'jpeg:quality=abc': bad value 'abc' for quality: expected an integer$"),
    ("salt_pepper:fraction=lots", "bad value 'lots' for fraction: expected a number$"),
])
def test_bad_specs_are_study_errors(text, message):
    with pytest.raises(StudyError, match=message):
        parse_corruption(text)


@pytest.mark.parametrize("text", ["downsample:factor=2", "downsample:factor=4", "jpeg:quality=10",
                                  "salt_pepper:fraction=0.1", *[n for n in CORRUPTIONS.names() if n != "none"]])
def test_deterministic_same_size_and_changes_pixels(text):
    """Every registered corruption at its defaults too (a new one is checked without a line here)."""
    spec = parse_corruption(text)
    img = photo()
    a = apply_corruption(spec, img, "0:train/a.png")
    b = apply_corruption(spec, img.copy(), "0:train/a.png")
    assert a.size == img.size
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a.convert("RGB")), np.asarray(img))


@pytest.mark.parametrize("apply, got", [(lambda img, p, rng: np.asarray(img), "ndarray"),
                                        (lambda img, p, rng: img.resize((8, 8)), r"an image of size \(8, 8\)")],
                         ids=["array", "resized"])
def test_a_corruption_returning_no_image_of_the_same_size_is_named(unregistered, apply, got):
    """An array failed in ImageReader (`'numpy.ndarray' object has no attribute 'convert'`), another size passed
    unnoticed (training crops it): both now name the corruption and its module."""
    unregistered.append("example_noise")
    register(Corruption("example_noise", {}, apply))
    with pytest.raises(StudyError, match=rf"^corruption example_noise \({__name__}\): apply returned {got}, not a "
                                         r"PIL image of the input's size \(48, 40\)$"):
        apply_corruption("example_noise", photo(), "0:train/a.png")


def test_salt_pepper_depends_on_key_and_hits_the_fraction():
    spec = parse_corruption("salt_pepper:fraction=0.2")
    img = Image.fromarray(np.full((100, 100, 3), 128, np.uint8))
    a = np.asarray(apply_corruption(spec, img, "0:a.png"))
    b = np.asarray(apply_corruption(spec, img, "0:b.png"))
    assert not np.array_equal(a, b)
    hit = (a != 128).any(axis=2).mean()
    assert 0.17 < hit < 0.23
    assert set(np.unique(a)) == {0, 128, 255}
    assert 0.45 < (a == 255).all(axis=2).mean() / hit < 0.55  # salt and pepper, half each


def test_salt_pepper_noise_is_pinned():
    """The noise of one image is fixed by the spec and the key (an existing corrupted manifest keeps its pixels
    under its content hash): these positions are the current blake2b seeding of "<spec>|<key>" (byte order
    included), drawn by numpy's PCG64 `random`."""
    img = Image.fromarray(np.full((12, 16, 3), 128, np.uint8))
    a = np.asarray(apply_corruption(parse_corruption("salt_pepper:fraction=0.1"), img, "0:train/a.png"))[:, :, 0]
    assert np.flatnonzero(a == 255).tolist() == [24, 46, 71, 100, 108, 143, 147, 157]
    assert np.flatnonzero(a == 0).tolist() == [35, 53, 74, 144, 165, 174, 175]


def test_stronger_downsampling_loses_more():
    img = photo(size=(64, 64))
    ref = np.asarray(img, dtype=float)
    err = {f: np.abs(np.asarray(apply_corruption(parse_corruption(f"downsample:factor={f}"), img, "k"),
                                dtype=float) - ref).mean() for f in (2, 4)}
    assert err[4] > err[2] > 0


def test_downsampling_is_the_named_resampling_down_then_up():
    """Bicubic both ways by default, the `interpolation` parameter otherwise (an upsampling by another filter, or
    the parameter unread, passed the other tests)."""
    img = photo(size=(64, 48))
    for name, method in (("bicubic", Image.Resampling.BICUBIC), ("bilinear", Image.Resampling.BILINEAR)):
        spec = parse_corruption("downsample:factor=4" + ("" if name == "bicubic" else f",interpolation={name}"))
        want = img.resize((16, 12), method).resize((64, 48), method)
        assert np.array_equal(np.asarray(apply_corruption(spec, img, "k")), np.asarray(want)), name
    odd = photo(size=(63, 47))  # the small size is rounded (15.75 x 11.75 -> 16 x 12), not truncated
    want = odd.resize((16, 12), Image.Resampling.BICUBIC).resize((63, 47), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(apply_corruption(parse_corruption("downsample:factor=4"), odd, "k")),
                          np.asarray(want))
    half = photo(size=(10, 6))  # rounded half to even (2.5 x 1.5 -> 2 x 2), as the docs say: not half up (3 x 2)
    want = half.resize((2, 2), Image.Resampling.BICUBIC).resize((10, 6), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(apply_corruption(parse_corruption("downsample:factor=4"), half, "k")),
                          np.asarray(want))


def test_jpeg_quality_is_the_encoders_quality():
    """The image is one JPEG round trip at `quality` (the parameter unread, Pillow's 75, passed the other tests)."""
    import io

    img = photo(size=(64, 64))
    for q in (10, 90):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        want = np.asarray(Image.open(buf).convert("RGB"))
        got = np.asarray(apply_corruption(parse_corruption(f"jpeg:quality={q}"), img, "k").convert("RGB"))
        assert np.array_equal(got, want), q
    ref = np.asarray(img, dtype=float)
    err = {q: np.abs(np.asarray(apply_corruption(parse_corruption(f"jpeg:quality={q}"), img, "k"), dtype=float)
                     - ref).mean() for q in (10, 90)}
    assert err[10] > err[90] > 0


def test_none_is_identity():
    img = photo()
    assert apply_corruption(parse_corruption("none"), img, "k") is img


def test_spaces_around_names_keys_and_values_are_one_spelling():
    spec = parse_corruption(" downsample : factor = 4 , interpolation = bilinear ")
    assert spec == parse_corruption("downsample:factor=4,interpolation=bilinear")
    assert str(spec) == "downsample:factor=4,interpolation=bilinear"
    assert parse_corruption("downsample:factor=4, ,interpolation=bilinear") == spec  # a blank item is no item


@pytest.mark.parametrize("text", ["jpeg:quality=1", "jpeg:quality=95", "salt_pepper:fraction=0.001",
                                  "salt_pepper:fraction=1.0", "downsample:factor=2"])
def test_the_ends_of_each_parameter_range_are_allowed(text):
    assert str(parse_corruption(text)) == text


def test_a_tiny_image_keeps_its_size_under_strong_downsampling():
    """The small side never rounds to 0 pixels (1 x 3 at factor 4 is 1 x 1 in between), either side."""
    for size in ((1, 3), (3, 1)):
        assert apply_corruption(parse_corruption("downsample:factor=4"), photo(size=size), "k").size == size


ALL_BUT_NONE = [n for n in CORRUPTIONS.names() if n != "none"]  # a new corruption is checked without a line here


@pytest.mark.parametrize("text", ["jpeg:quality=10", "salt_pepper:fraction=0.5", "downsample:factor=2",
                                  *ALL_BUT_NONE])
def test_an_image_with_alpha_or_a_palette_is_corrupted_as_rgb(text):
    """JPEG has no alpha, salt and pepper sets whole pixels, and Pillow resizes a palette image by nearest whatever
    `interpolation` says: RGBA and P images are read as RGB first (`rgb_or_grey`, which every corruption uses)."""
    spec = parse_corruption(text)
    for mode in ("RGBA", "P"):
        img = photo().convert(mode)
        out = apply_corruption(spec, img, "0:a.png")
        assert out.mode == "RGB" and out.size == (48, 40), mode
        assert np.array_equal(np.asarray(out), np.asarray(apply_corruption(spec, img.convert("RGB"), "0:a.png")))


def test_the_defaults_are_the_documented_ones():
    """README and manifests/README.md state these defaults (ours: the paper gives none); a bare name means them."""
    assert [str(parse_corruption(n)) for n in ("downsample", "jpeg", "salt_pepper")] == \
        ["downsample:factor=2", "jpeg:quality=10", "salt_pepper:fraction=0.1"]
    assert parse_corruption("downsample").kwargs["interpolation"] == "bicubic"


@pytest.mark.parametrize("text", ["jpeg:quality=10", "salt_pepper:fraction=0.5", "downsample:factor=2",
                                  *ALL_BUT_NONE])
def test_a_grayscale_image_stays_grayscale(text):
    """An L image is corrupted as L (a grayscale JPEG, one value per pixel), not made RGB first."""
    img = photo().convert("L")
    out = apply_corruption(parse_corruption(text), img, "0:a.png")
    assert out.mode == "L" and out.size == img.size
