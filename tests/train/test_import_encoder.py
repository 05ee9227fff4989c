"""`study encoder import` (study.train.import_encoder): checkpoints laid out as torchvision's, MoCo's, DINO's,
solo-learn's and VISSL's (made here from torchvision's own ResNet, randomly initialised: nothing is downloaded) read
as study encoder files."""
import re
import sys
import zipfile

import pytest
import torch
import torchvision

from study.cli import main
from study.errors import StudyError
from study.hashing import file_sha256
from study.train.backbones import encoder_provenance, load_encoder
from study.train.import_encoder import import_encoder


def _torchvision_resnet18(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).eval()


def _features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's ResNet up to its pooled features (its classifier left out)."""
    fc, model.fc = model.fc, torch.nn.Identity()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.fc = fc


def test_a_torchvision_state_dict_reads_as_the_same_network_without_its_classifier(tmp_path):
    tv = _torchvision_resnet18()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    got = import_encoder(tmp_path / "tv.pth", tmp_path / "enc.pt", "resnet18")
    assert (got["key"], got["prefix"], got["left_out"]) == (None, "", ["fc.bias", "fc.weight"])
    assert got["sha256"] == file_sha256(tmp_path / "tv.pth")
    x = torch.randn(2, 3, 64, 64)
    enc = load_encoder(tmp_path / "enc.pt")
    with torch.no_grad():
        assert torch.equal(enc(x), _features(tv, x))
    recipe, protocol = encoder_provenance(tmp_path / "enc.pt")
    assert recipe is None and protocol["imported"]["source"] == str((tmp_path / "tv.pth").resolve())


def test_moco_and_dino_layouts_read_by_their_key_and_prefix(tmp_path):
    """MoCo keeps a query and a key encoder under `state_dict` (`module.encoder_q.`, `module.encoder_k.`): the one
    to read is asked for, then read; DINO's `teacher` is found without --key, its prefix without --prefix."""
    q, k = _torchvision_resnet18(0), _torchvision_resnet18(1)
    state = {**{f"module.encoder_q.{n}": v for n, v in q.state_dict().items()},
             **{f"module.encoder_k.{n}": v for n, v in k.state_dict().items()}}
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": state}, tmp_path / "moco.pth.tar")
    with pytest.raises(StudyError, match=r"moco.pth.tar: expected one encoder whose stem is `<prefix>conv1.weight` "
                                         r"\(resnet18\), found 2: 'module.encoder_k.', 'module.encoder_q.': name"):
        import_encoder(tmp_path / "moco.pth.tar", tmp_path / "q.pt", "resnet18")
    assert not (tmp_path / "q.pt").exists()
    got = import_encoder(tmp_path / "moco.pth.tar", tmp_path / "q.pt", "resnet18", prefix="module.encoder_q.")
    assert got["key"] == "state_dict" and got["left_out"] == ["fc.bias", "fc.weight"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "q.pt")(x), _features(q, x))

    head = {"backbone.fc.weight": torch.zeros(1)}  # DINO's heads: under other names, left out with the classifier
    torch.save({"teacher": {**{f"backbone.{n}": v for n, v in k.state_dict().items()}, **head}, "epoch": 3},
               tmp_path / "dino.pth")
    got = import_encoder(tmp_path / "dino.pth", tmp_path / "t.pt", "resnet18")
    assert (got["key"], got["prefix"]) == ("teacher", "backbone.")
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "t.pt")(x), _features(k, x))


def test_weights_of_another_architecture_or_width_are_refused_naming_them_and_nothing_is_written(tmp_path):
    torch.save(_torchvision_resnet18().state_dict(), tmp_path / "tv.pth")
    with pytest.raises(StudyError, match=r"tv.pth: \d+ weight\(s\) of resnet50 \(width 64\) not under prefix '': "
                                         r"layer1.0.conv3.weight"):
        import_encoder(tmp_path / "tv.pth", tmp_path / "enc.pt", "resnet50")
    with pytest.raises(StudyError, match=r"tv.pth: conv1.weight has shape \(64, 3, 7, 7\), resnet18 \(width 32\) "
                                         r"needs \(32, 3, 7, 7\)"):
        import_encoder(tmp_path / "tv.pth", tmp_path / "enc.pt", "resnet18", width=32)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "rn34.pth")
    with pytest.raises(StudyError, match=r"rn34.pth: \d+ weight\(s\) under prefix '' in resnet18's own modules that "
                                         r"it does not have: layer1.2.bn1.bias, .* \(a deeper network's\?"):
        import_encoder(tmp_path / "rn34.pth", tmp_path / "enc.pt", "resnet18")  # its first blocks fit resnet18's
    (tmp_path / "rn34.pth").unlink()
    with pytest.raises(StudyError, match=r"--backbone: unknown backbone 'resnet51' \(did you mean 'resnet50'"):
        import_encoder(tmp_path / "tv.pth", tmp_path / "enc.pt", "resnet51")
    with pytest.raises(StudyError, match=r"tv.pth: no 'model' \(at 'model'; keys there: bn1.bias, "):
        import_encoder(tmp_path / "tv.pth", tmp_path / "enc.pt", "resnet18", key="model")
    with pytest.raises(StudyError, match=r"tv.pth: no key starts with --prefix 'module.'"):
        import_encoder(tmp_path / "tv.pth", tmp_path / "enc.pt", "resnet18", prefix="module.")
    assert list(tmp_path.iterdir()) == [tmp_path / "tv.pth"]


def test_a_checkpoint_that_is_no_state_dict_or_holds_code_is_refused_with_what_to_do(tmp_path):
    """An object that would run os's code as it loads (torch blocks os and sys: no placeholder stands in for it) is
    refused in one line naming it, its code not run."""
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "none.pt")
    with pytest.raises(StudyError, match=r"none.pt: found no state dict, at the top or under state_dict, .* \(keys: "
                                         r"epoch, optimizer\): name it with --key"):
        import_encoder(tmp_path / "none.pt", tmp_path / "enc.pt", "resnet18")
    torch.save({"state_dict": _torchvision_resnet18().state_dict(), "args": _Shell(f"touch {tmp_path / 'ran'}")},
               tmp_path / "code.pt")
    with pytest.raises(StudyError, match=r"^\S*code.pt: cannot read its weights \(it holds more than tensors: GLOBAL "
                                         r"\S+\.system whose module \S+ is blocked\); where it holds other objects, "
                                         r"save its state dict alone first, in Python, for a file you trust: "
                                         r"ckpt = torch.load\(path, weights_only=False\)[^\n]*$"):
        import_encoder(tmp_path / "code.pt", tmp_path / "enc.pt", "resnet18")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "enc.pt").exists()
    with pytest.raises(StudyError, match=r"gone.pt: checkpoint not found"):
        import_encoder(tmp_path / "gone.pt", tmp_path / "enc.pt", "resnet18")


class _Shell:
    """An object whose unpickling runs a shell command (os.system)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def _mark(path):
    """What an object of a training script's own would run as it loads: here, write `path`."""
    open(path, "w").close()


class _Marks:
    """An object whose unpickling calls this module's _mark: a class the loading process may not have."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return _mark, (self.path,)


def _fake_omegaconf():
    """Modules named as OmegaConf's (omegaconf.dictconfig, omegaconf.base), whose DictConfig pickles as OmegaConf
    2's does (a new object, its state a dict holding a dataclass of metadata with `typing.Any` and a defaultdict,
    and nodes of another class): solo-learn's `hyper_parameters: {cfg: DictConfig}`; omegaconf is not installed."""
    import collections
    import dataclasses
    import types
    import typing

    base, dictconfig = types.ModuleType("omegaconf.base"), types.ModuleType("omegaconf.dictconfig")

    @dataclasses.dataclass
    class ContainerMetadata:
        key_type: typing.Any = typing.Any
        flags: dict = dataclasses.field(default_factory=lambda: collections.defaultdict(dict))

    class AnyNode:
        def __init__(self, value):
            self._val = value

    class DictConfig:
        def __init__(self, content):
            self.__dict__.update(_metadata=ContainerMetadata(), _parent=None,
                                 _content={k: AnyNode(v) for k, v in content.items()})

    for module, cls in ((base, ContainerMetadata), (base, AnyNode), (dictconfig, DictConfig)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    package = types.ModuleType("omegaconf")
    package.base, package.dictconfig = base, dictconfig
    return {"omegaconf": package, "omegaconf.base": base, "omegaconf.dictconfig": dictconfig}, DictConfig


def test_a_solo_learn_checkpoint_reads_its_omegaconf_hyperparameters_as_placeholders_running_none(tmp_path,
                                                                                                  monkeypatch, capsys):
    """solo-learn's Lightning checkpoint keeps its config as an OmegaConf DictConfig (`hyper_parameters.cfg`),
    beside `backbone.*`, `momentum_backbone.*` and the heads: objects of classes this process need not have, read as
    empty placeholders, named; none of their code runs (a function one would call is not called); the weights are
    the backbone's, exactly."""
    modules, dict_config = _fake_omegaconf()
    backbone, momentum = _torchvision_resnet18(0), _torchvision_resnet18(1)
    backbone.fc = momentum.fc = torch.nn.Identity()  # solo-learn's ResNets have no classifier
    state = {**{f"backbone.{n}": v for n, v in backbone.state_dict().items()},
             **{f"momentum_backbone.{n}": v for n, v in momentum.state_dict().items()},
             "projector.0.weight": torch.zeros(8, 512), "classifier.weight": torch.zeros(10, 512)}
    with monkeypatch.context() as m:
        for name, module in modules.items():
            m.setitem(sys.modules, name, module)
        torch.save({"epoch": 399, "global_step": 10, "pytorch-lightning_version": "2.0.9", "state_dict": state,
                    "hparams_name": "kwargs", "hyper_parameters": {"cfg": dict_config({"method": "byol"})},
                    "callbacks": {"mark": _Marks(tmp_path / "ran")}}, tmp_path / "solo.ckpt")
    assert sys.modules.get("omegaconf.dictconfig") is not modules["omegaconf.dictconfig"]  # gone, as uninstalled
    got = import_encoder(tmp_path / "solo.ckpt", tmp_path / "enc.pt", "resnet18", prefix="backbone")
    assert not (tmp_path / "ran").exists()
    assert (got["key"], got["prefix"], got["left_out"]) == ("state_dict", "backbone.", [])
    assert {"omegaconf.dictconfig.DictConfig", "omegaconf.base.ContainerMetadata", "omegaconf.base.AnyNode",
            "typing.Any", f"{__name__}._mark"} <= set(got["placeholders"])
    assert encoder_provenance(tmp_path / "enc.pt")[1]["imported"]["placeholders"] == got["placeholders"]
    saved = torch.load(tmp_path / "enc.pt", weights_only=True)["state_dict"]
    assert saved.keys() == backbone.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in backbone.state_dict().items())
    assert main(["encoder", "import", str(tmp_path / "solo.ckpt"), str(tmp_path / "cli.pt"), "--backbone", "resnet18",
                 "--prefix", "backbone"]) == 0
    assert "; read as placeholders, no code run: " in capsys.readouterr().out


def test_a_checkpoint_cut_short_or_with_a_corrupt_record_is_refused_naming_it_and_nothing_is_written(tmp_path):
    """torch.load does not check a zip record's CRC-32: a byte flipped in a tensor was read as another weight. A file
    cut short, empty or of text is told as such, not as one holding other objects to save apart."""
    torch.save(_torchvision_resnet18().state_dict(), tmp_path / "tv.pth")
    data = bytearray((tmp_path / "tv.pth").read_bytes())
    with zipfile.ZipFile(tmp_path / "tv.pth") as archive:
        record = max(archive.infolist(), key=lambda r: r.file_size)  # the largest tensor's bytes
    start = record.header_offset + 30 + len(record.filename.encode()) + len(record.extra)  # zip's local header
    data[start + 100:start + 104] = bytes(255 - b for b in data[start + 100:start + 104])
    (tmp_path / "flipped.pth").write_bytes(bytes(data))
    with pytest.raises(StudyError, match=rf"flipped.pth: corrupt: its record {re.escape(record.filename)} does not "
                                         r"match its checksum \(CRC-32\): copy the checkpoint again"):
        import_encoder(tmp_path / "flipped.pth", tmp_path / "enc.pt", "resnet18")
    (tmp_path / "cut.pth").write_bytes(bytes(data[:len(data) // 2]))
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    for name in ("cut.pth", "empty.pth", "text.pth"):
        with pytest.raises(StudyError, match=rf"{name}: cannot read its weights \(.*\): cut short or corrupt \(copy "
                                             r"it again\), or not a file torch.save wrote$"):
            import_encoder(tmp_path / name, tmp_path / "enc.pt", "resnet18")
    assert not (tmp_path / "enc.pt").exists() and not list(tmp_path.glob(".*"))


def test_a_checkpoint_saved_without_checksums_is_imported_not_called_corrupt(tmp_path):
    """torch.save with `torch.utils.serialization.config.save.compute_crc32 = False` (a faster save of recent torch)
    writes 0 as each record's CRC-32 in the zip directory: a whole checkpoint, which torch.load reads, not a corrupt
    one (made here by writing those zeros into a checkpoint's directory, as that setting leaves it)."""
    net = _torchvision_resnet18(2)
    torch.save(net.state_dict(), tmp_path / "tv.pth")
    data = bytearray((tmp_path / "tv.pth").read_bytes())
    with zipfile.ZipFile(tmp_path / "tv.pth") as archive:
        at, count = archive.start_dir, len(archive.infolist())
    for _ in range(count):  # each central directory entry: its CRC-32 at byte 16, its name and extras after byte 46
        assert data[at:at + 4] == b"PK\x01\x02"
        data[at + 16:at + 20] = bytes(4)
        at += 46 + sum(int.from_bytes(data[at + i:at + i + 2], "little") for i in (28, 30, 32))
    (tmp_path / "nocrc.pth").write_bytes(bytes(data))
    with zipfile.ZipFile(tmp_path / "nocrc.pth") as archive:
        assert {r.CRC for r in archive.infolist()} == {0} and archive.testzip() is not None  # zipfile calls it bad
    import_encoder(tmp_path / "nocrc.pth", tmp_path / "enc.pt", "resnet18")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "enc.pt")(x), _features(net, x))


def test_a_vissl_checkpoint_is_read_from_its_trunk_without_key(tmp_path):
    """VISSL keeps its trunk under classy_state_dict.base_model.model.trunk, its ResNet's keys under
    `_feature_blocks.`, and its heads beside it: found as --key would name it."""
    net = _torchvision_resnet18(3)
    trunk = {f"_feature_blocks.{n}": v for n, v in net.state_dict().items() if not n.startswith("fc.")}
    torch.save({"phase_idx": 9, "iteration": 100, "type": "checkpoint",
                "classy_state_dict": {"train": True, "phase_idx": 9, "base_model": {"meta": {}, "model": {
                    "trunk": trunk, "heads": {"0.clf.0.weight": torch.zeros(8, 512)}}}}}, tmp_path / "vissl.torch")
    got = import_encoder(tmp_path / "vissl.torch", tmp_path / "enc.pt", "resnet18")
    assert (got["key"], got["prefix"], got["left_out"]) == ("classy_state_dict.base_model.model.trunk",
                                                            "_feature_blocks.", [])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "enc.pt")(x), _features(net, x))


def test_study_encoder_import_says_what_it_wrote_and_left_out(tmp_path, capsys):
    torch.save(_torchvision_resnet18().state_dict(), tmp_path / "tv.pth")
    code = main(["encoder", "import", str(tmp_path / "tv.pth"), str(tmp_path / "enc.pt"), "--backbone", "resnet18"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"encoder {tmp_path / 'enc.pt'}: resnet18 (width 64) from ")
    assert out.rstrip().endswith("; left out 2 key(s) not of the encoder: fc.bias, fc.weight"), out
    assert f"; checkpoint sha256 {file_sha256(tmp_path / 'tv.pth')[:16]})" in out, out  # the source's, not OUT's
    code = main(["encoder", "import", str(tmp_path / "tv.pth"), str(tmp_path / "x.pt"), "--backbone", "resnet50"])
    assert code == 2 and "weight(s) of resnet50" in capsys.readouterr().err


def test_a_prefix_without_its_final_dot_reads_the_module_of_that_name(tmp_path):
    """`--prefix module.encoder_q` (MoCo's module, as its code names it) is `module.encoder_q.`: without the dot
    every key would be read as `.conv1.weight` and none found."""
    q = _torchvision_resnet18(0)
    state = {**{f"module.encoder_q.{n}": v for n, v in q.state_dict().items()},
             **{f"module.encoder_k.{n}": v.clone() for n, v in q.state_dict().items()}}
    torch.save({"state_dict": state}, tmp_path / "moco.pth.tar")
    got = import_encoder(tmp_path / "moco.pth.tar", tmp_path / "q.pt", "resnet18", prefix="module.encoder_q")
    assert got["prefix"] == "module.encoder_q." and got["left_out"] == ["fc.bias", "fc.weight"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "q.pt")(x), _features(q, x))


@pytest.mark.parametrize("torch_2_4", [False, True])
def test_dino_and_lightning_checkpoints_with_an_argparse_namespace_are_read(tmp_path, monkeypatch, torch_2_4):
    """DINO's training checkpoint keeps its `args` (argparse's Namespace) beside `student` and `teacher`, and a
    Lightning checkpoint may keep its hyperparameters as one: plain data, read; the teacher is DINO's encoder. Also
    as torch 2.4 reads them (`torch_2_4`: no `safe_globals` context manager; its process-wide list, restored after)."""
    import argparse

    before = set(torch.serialization.get_safe_globals())
    if torch_2_4:
        monkeypatch.delattr(torch.serialization, "safe_globals")
    t = _torchvision_resnet18(1)
    student = {f"module.backbone.{n}": v.clone() for n, v in _torchvision_resnet18(2).state_dict().items()}
    torch.save({"student": student, "teacher": {f"backbone.{n}": v for n, v in t.state_dict().items()}, "epoch": 3,
                "args": argparse.Namespace(arch="resnet18", out_dim=65536)}, tmp_path / "dino.pth")
    got = import_encoder(tmp_path / "dino.pth", tmp_path / "t.pt", "resnet18")
    assert (got["key"], got["prefix"]) == ("teacher", "backbone.")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "t.pt")(x), _features(t, x))
    torch.save({"state_dict": {f"backbone.{n}": v for n, v in t.state_dict().items()}, "global_step": 10,
                "hyper_parameters": argparse.Namespace(backbone="resnet18")}, tmp_path / "solo.ckpt")
    assert import_encoder(tmp_path / "solo.ckpt", tmp_path / "s.pt", "resnet18")["prefix"] == "backbone."
    assert set(torch.serialization.get_safe_globals()) == before  # nothing left loadable by other loads


def test_torch_2_4s_safe_list_is_restored_though_it_hands_out_the_live_list(monkeypatch):
    """torch 2.4's get_safe_globals returns its list itself, which add_safe_globals extends in place (`+=`): a
    restore from that list kept Namespace loadable by every later load of the process."""
    import argparse

    from study.train.import_encoder import _safe_objects

    held = {"list": ["theirs"]}  # torch 2.4's torch._weights_only_unpickler._marked_safe_globals_list

    def add(items):
        held["list"] += items

    def clear():
        held["list"] = []

    monkeypatch.delattr(torch.serialization, "safe_globals")
    monkeypatch.setattr(torch.serialization, "get_safe_globals", lambda: held["list"])
    monkeypatch.setattr(torch.serialization, "add_safe_globals", add)
    monkeypatch.setattr(torch.serialization, "clear_safe_globals", clear)
    with _safe_objects():
        assert held["list"] == ["theirs", argparse.Namespace]
    assert held["list"] == ["theirs"]


def test_an_out_that_is_the_checkpoint_or_cannot_be_written_is_refused_naming_it(tmp_path):
    """`study encoder import ck.pth ck.pth` replaced the checkpoint (its classifier, its other keys) with the study
    encoder file; an OUT that cannot be written was named by the temporary file beside it; a CHECKPOINT that is a
    folder was told to save its state dict alone."""
    torch.save(_torchvision_resnet18().state_dict(), tmp_path / "tv.pth")
    before = (tmp_path / "tv.pth").read_bytes()
    with pytest.raises(StudyError, match=r"tv.pth is the checkpoint .*tv.pth itself: write the study encoder file to "
                                         r"another path"):
        import_encoder(tmp_path / "tv.pth", tmp_path / "." / "tv.pth", "resnet18")
    assert (tmp_path / "tv.pth").read_bytes() == before
    (tmp_path / "folder").mkdir()
    with pytest.raises(StudyError, match=r"^\S*folder: cannot write the encoder file \("):
        import_encoder(tmp_path / "tv.pth", tmp_path / "folder", "resnet18")
    with pytest.raises(StudyError, match=r"^\S*folder: cannot read the checkpoint \(Is a directory\)$"):
        import_encoder(tmp_path / "folder", tmp_path / "enc.pt", "resnet18")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "tv.pth"]


def test_a_backbone_whose_stem_is_not_conv1_finds_its_prefix_by_its_own_first_weight(tmp_path):
    """docs/contributing.md lets a backbone be any module: the prefix is found where the backbone's first weight is
    (here `features.0.weight`), not only a ResNet's `conv1.weight`; a missing one is named as that stem."""
    from torch import nn

    from study.train.backbones import BACKBONES

    class Plain(nn.Module):
        def __init__(self, width: int = 64):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.AdaptiveAvgPool2d(1))
            self.feature_dim = width

        def forward(self, x):
            return self.features(x).flatten(1)

    BACKBONES.register("plain_stem_test")(lambda width=64: Plain(width))
    try:
        torch.manual_seed(0)
        net = Plain(4).eval()
        torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "c.pt")
        got = import_encoder(tmp_path / "c.pt", tmp_path / "enc.pt", "plain_stem_test", width=4)
        assert (got["key"], got["prefix"], got["left_out"]) == ("state_dict", "module.", [])
        x = torch.randn(2, 3, 16, 16)
        with torch.no_grad():
            assert torch.equal(load_encoder(tmp_path / "enc.pt")(x), net(x))
        torch.save({"other.weight": torch.zeros(1)}, tmp_path / "none.pt")
        with pytest.raises(StudyError, match=r"stem is `<prefix>features\.0\.weight` \(plain_stem_test\), found none"):
            import_encoder(tmp_path / "none.pt", tmp_path / "x.pt", "plain_stem_test", width=4)
    finally:
        BACKBONES.unregister("plain_stem_test")
