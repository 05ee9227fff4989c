"""study.registry: names map to their objects; a name registered twice or unknown is an error."""
import sys
from pathlib import Path

import pytest

from study.errors import StudyError
from study.registry import Registry, import_modules
from study.train.backbones import BACKBONES
from study.train.methods import METHODS


def test_a_name_registered_twice_is_refused_and_the_first_object_kept():
    reg = Registry("thing")
    first = reg.register("a")(object())
    with pytest.raises(ValueError, match="thing 'a' registered twice"):
        reg.register("a")(object())
    assert reg.get("a") is first and reg.names() == ["a"]


def test_a_module_reloaded_registers_its_names_again(tmp_path, monkeypatch):
    """A notebook's autoreload (importlib.reload) runs a module's decorators again: the same definition replaces the
    one before; another definition under a taken name is still refused, naming both."""
    import importlib

    reg = Registry("thing")
    monkeypatch.setattr(sys.modules[__name__], "RELOAD_REGISTRY", reg, raising=False)
    (tmp_path / "plugin_reloaded.py").write_text(
        f"from {__name__} import RELOAD_REGISTRY\n@RELOAD_REGISTRY.register('p')\nclass Plugin:\n    version = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("plugin_reloaded")
    try:
        source = tmp_path / "plugin_reloaded.py"
        source.write_text(source.read_text().replace("= 1", "= 22"))  # another size: no stale bytecode
        importlib.invalidate_caches()
        module = importlib.reload(module)
        assert reg.get("p") is module.Plugin and reg.get("p").version == 22 and reg.names() == ["p"]
        with pytest.raises(ValueError, match=r"thing 'p' registered twice: by plugin_reloaded.Plugin and by "
                                             rf"{__name__}\..*Other"):
            class Other:
                pass
            reg.register("p")(Other)
    finally:
        sys.modules.pop("plugin_reloaded", None)


def test_an_unregistered_name_is_unknown_and_free_again():
    reg = Registry("thing")
    reg.register("a")(1)
    reg.unregister("a")
    reg.unregister("never")  # nothing to remove: no error
    assert "a" not in reg and reg.register("a")(2) == 2 and reg.get("a") == 2


def test_an_unknown_name_is_a_study_error_naming_the_closest_known_one():
    reg = Registry("thing")
    reg.register("alpha")(1)
    reg.register("beta")(2)
    with pytest.raises(StudyError, match=r"grid.yaml:3: unknown thing 'alpah' \(did you mean 'alpha'\?\)"):
        reg.get("alpah", "grid.yaml:3")
    assert "alpah" not in reg and "alpha" in reg and list(reg) == ["alpha", "beta"]


@pytest.mark.parametrize("name", ["a|b", "a+b", "a:b", "a,b", "a=b", "a b", "a/b", "_a", "-a", "", "a·b"])
def test_a_name_that_axes_specs_or_manifest_names_cannot_hold_is_refused(name):
    """A registered name becomes an axis value, a results column and part of a corrupted manifest's name; `|`, `+`,
    `:`, `,` and `=` join or split names there. Refused when registered, not when a grid or a report meets it."""
    reg = Registry("thing")
    with pytest.raises(ValueError, match=r"thing name .*: letters, digits and _ \. - only"):
        reg.register(name)(object())
    assert reg.names() == []
    for ok in ("fashion-mnist", "resnet18_small", "v1.2"):
        reg.register(ok)(object())
    assert reg.names() == ["fashion-mnist", "resnet18_small", "v1.2"]


def test_the_methods_and_backbones_are_registered_under_their_names():
    """The shipped ones (a subset: adding a method or backbone is one new file, which must not fail this test)."""
    assert {"byol", "moco", "random", "simclr", "supervised"} <= set(METHODS.names())
    assert {"resnet18", "resnet18_small", "resnet50", "resnet50_small"} <= set(BACKBONES.names())
    with pytest.raises(StudyError, match="unknown method 'simclrr'"):
        METHODS.get("simclrr")
    with pytest.raises(StudyError, match="unknown backbone 'resnet51'"):
        BACKBONES.get("resnet51")


def test_names_are_listed_sorted_whatever_the_order_of_registration():
    """A grid error's known list, `study plan`'s listing and the report's columns do not depend on import order."""
    reg = Registry("thing")
    for name in ("gamma", "alpha", "beta"):
        reg.register(name)(name)
    assert list(reg) == reg.names() == ["alpha", "beta", "gamma"]
    with pytest.raises(StudyError, match=r"\(known: alpha, beta, gamma\)$"):
        reg.get("delta")


def test_import_modules_imports_each_public_module_and_no_private_one(tmp_path, monkeypatch):
    """Adding a method or reader is adding its file; a `_helper.py` beside them is not imported as one."""
    pkg = tmp_path / "regpkg_qs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("SEEN = []\n")
    (pkg / "one.py").write_text("from regpkg_qs import SEEN\nSEEN.append('one')\n")
    (pkg / "two.py").write_text("from regpkg_qs import SEEN\nSEEN.append('two')\n")
    (pkg / "_private.py").write_text("raise AssertionError('a private module was imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("regpkg_qs", "regpkg_qs.one", "regpkg_qs.two", "regpkg_qs._private"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import regpkg_qs

    import_modules("regpkg_qs", regpkg_qs.__path__)
    assert sorted(regpkg_qs.SEEN) == ["one", "two"] and "regpkg_qs._private" not in sys.modules


@pytest.mark.parametrize("name", ["a\n", "a b", "", "-a", "a/b", "a:b"])
def test_a_name_that_is_not_a_word_is_refused_whole(name):
    """`re.match` with `$` let a trailing line break through (`a\n`)."""
    with pytest.raises(ValueError, match="letters, digits and _ . - only"):
        Registry("thing").register(name)(object())


def test_a_manifest_name_is_a_word_of_its_characters_of_at_most_200_bytes():
    """A file name (`.<name>.lock`, an atomic write's temporary stay under 255 bytes) and a word of the printed
    `study manifest` commands."""
    from study.registry import MANIFEST_NAME_MAX, is_manifest_name

    assert MANIFEST_NAME_MAX == 200
    for name in ("inat21", "in+pl", "imagenet.jpeg=q10", "a@b", "x" * 200):
        assert is_manifest_name(name), name
    for name in ("x" * 201, "a/b", "../a", ".a", "-a", "a b", "a\n", "", None, 5, Path("a")):
        assert not is_manifest_name(name), name


def test_an_unknown_name_without_a_place_starts_with_what_is_unknown():
    reg = Registry("thing")
    reg.register("alpha")(object())
    with pytest.raises(StudyError, match=r"^unknown thing 'alpah'"):
        reg.get("alpah")
