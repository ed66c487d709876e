import os

import pytest

from crm.upload_stash import StashError, UploadStash


def test_upload_is_redeemed_only_by_its_user(tmp_path):
    stash = UploadStash(tmp_path)
    token = stash.put(1, b"a,b\n")
    assert stash.get(1, token) == b"a,b\n"
    with pytest.raises(StashError):
        stash.get(2, token)
    with pytest.raises(StashError):
        stash.get(1, "../../etc/passwd")


def test_report_is_kept_after_the_upload_is_discarded(tmp_path):
    stash = UploadStash(tmp_path)
    token = stash.put(1, b"x")
    stash.put_report(1, token, {"created": 2})
    stash.discard(1, token)
    with pytest.raises(StashError):
        stash.get(1, token)
    assert stash.get_report(1, token) == {"created": 2}


def test_old_uploads_are_swept(tmp_path):
    stash = UploadStash(tmp_path)
    old = stash.put(1, b"old")
    path = tmp_path / "uploads" / "1" / f"{old}.data"
    os.utime(path, (0, 0))
    stash.put(1, b"new")
    assert not path.exists()
