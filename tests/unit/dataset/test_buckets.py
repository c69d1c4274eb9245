from __future__ import annotations

from ategnatos_mcp.dataset.buckets import Bucketing, make_buckets


def test_sdxl_buckets_match_kohya() -> None:
    buckets = make_buckets(1024)
    for bucket in [(1024, 1024), (832, 1216), (1216, 832), (768, 1344), (896, 1152), (512, 2048)]:
        assert bucket in buckets
    assert all(w % 64 == 0 and h % 64 == 0 for w, h in buckets)
    assert all(w * h <= 1024 * 1024 for w, h in buckets)


def test_images_land_in_the_nearest_aspect_bucket() -> None:
    b = Bucketing(1024)
    assert b.bucket_for(2000, 2000) == (1024, 1024)
    assert b.bucket_for(1080, 1920) == (768, 1344)
    assert b.bucket_for(4000, 100) == (2048, 256)
    assert b.count([(10, 10), (20, 20), (1920, 1080)]) == {(1024, 1024): 2, (1344, 768): 1}
