import pytest

from embedloop.core.models.artifacts import IntegrityError, clean_staging, hash_tree, new_staging_dir, publish, verify


def test_verify_detects_changed_and_missing_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "sub" / "b.txt").write_text("hello")
    files = hash_tree(tmp_path)
    assert set(files) == {"a.bin", "sub/b.txt"}
    verify(tmp_path, files)
    (tmp_path / "a.bin").write_bytes(b"abd")
    with pytest.raises(IntegrityError, match="differs"):
        verify(tmp_path, files)
    verify(tmp_path, files, only=["sub/b.txt"])  # only what is asked for is checked
    (tmp_path / "sub" / "b.txt").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        verify(tmp_path, files, only=["sub/b.txt"])
    with pytest.raises(IntegrityError, match="not registered"):
        verify(tmp_path, files, only=["c"])


def test_publish_is_a_rename_and_never_overwrites(tmp_path):
    staging = new_staging_dir(tmp_path / "staging")
    (staging / "f").write_text("x")
    publish(staging, tmp_path / "models" / "v1")
    assert (tmp_path / "models" / "v1" / "f").read_text() == "x" and not staging.exists()
    other = new_staging_dir(tmp_path / "staging")
    with pytest.raises(FileExistsError):
        publish(other, tmp_path / "models" / "v1")
    assert clean_staging(tmp_path / "staging") == [other]
    assert not any((tmp_path / "staging").iterdir())
