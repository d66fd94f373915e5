import os
from pathlib import Path

import pytest

from brats_unet.io import atomic_directory, atomic_path, read_json, read_record, write_json


def test_atomic_path_publishes_only_a_finished_file(tmp_path: Path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_the_next_writer_removes_what_a_killed_writer_left(tmp_path: Path):
    # what SIGKILL leaves: the temporary file or folder beside the output, never the output
    (tmp_path / ".a.json.tmp-x1y2").write_text("{\"half")
    (tmp_path / ".case.tmp-abc").mkdir()
    (tmp_path / ".case.tmp-abc/image.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / ".other.json.tmp-zz").write_text("not ours")  # another output's: kept
    write_json({"a": 1}, tmp_path / "a.json")
    with atomic_directory(tmp_path / "case") as tmp:
        (tmp / "image.npy").write_bytes(b"done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.tmp-zz", "a.json", "case"]
    assert read_json(tmp_path / "a.json") == {"a": 1}
    assert (tmp_path / "case/image.npy").read_bytes() == b"done"


def test_atomic_directory_replaces_the_whole_folder(tmp_path: Path):
    (tmp_path / "case").mkdir()
    (tmp_path / "case/stale.npy").write_bytes(b"old")
    with atomic_directory(tmp_path / "case") as tmp:
        (tmp / "image.npy").write_bytes(b"new")
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == ["image.npy"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_record_with_missing_or_unknown_keys_names_the_file_and_the_keys(tmp_path: Path):
    path = tmp_path / "record.json"
    write_json({"a": 1, "c": 3}, path)
    assert read_record(path, ("a", "c"), "a thing") == {"a": 1, "c": 3}
    with pytest.raises(ValueError, match=r"record.json: not a thing of this version: "
                       r"missing keys \['b'\], unknown keys \['c'\]"):
        read_record(path, ("a", "b"), "a thing")
    write_json([1, 2], path)
    with pytest.raises(ValueError, match="not a thing .a JSON object was expected"):
        read_record(path, ("a",), "a thing")
