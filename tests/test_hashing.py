"""study.hashing: a file's hash covers every byte of it; a config's hash ignores key order."""
import hashlib

from study.hashing import canonical_json, config_hash, file_sha256


def test_file_sha256_covers_the_whole_file(tmp_path):
    data = bytes(range(256)) * (3 * 4096 + 1)  # 3 MiB and a bit: read in several chunks
    f = tmp_path / "annotations.json"
    f.write_bytes(data)
    assert file_sha256(f) == hashlib.sha256(data).hexdigest()
    f.write_bytes(data[:-1] + b"x")  # a change past the first chunk makes another file
    assert file_sha256(f) == hashlib.sha256(data[:-1] + b"x").hexdigest() != hashlib.sha256(data).hexdigest()


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"x": [1, 2], "y": 0.1}}) == config_hash({"b": {"y": 0.1, "x": [1, 2]}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2}) and len(config_hash({"a": 1})) == 12


def test_a_configs_spelling_and_hash_never_change():
    """Job ids are config hashes that name folders and result files already on disk: the canonical spelling (no
    spaces, ASCII escapes) and the digest's first characters must stay what they were, or every job reruns."""
    config = {"b": [1, 0.1], "a": "\u00e9"}
    assert canonical_json(config) == '{"a":"\\u00e9","b":[1,0.1]}'
    assert config_hash(config) == "74d14117f8ef"
    assert config_hash(config, 64) == hashlib.sha256(canonical_json(config).encode()).hexdigest()


def test_whole_numbers_as_ints_makes_10_and_10_0_one_value_at_any_depth_and_leaves_the_rest():
    from study.hashing import config_hash, whole_numbers_as_ints

    assert config_hash(whole_numbers_as_ints({"a": [1.0, {"b": 0.0}]})) == config_hash({"a": [1, {"b": 0}]})
    assert whole_numbers_as_ints({"a": 0.5, "b": True, "c": "1.0", "d": None}) == {"a": 0.5, "b": True, "c": "1.0",
                                                                                   "d": None}
