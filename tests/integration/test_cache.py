"""The shared cache on the real Redis: many requests at once wait for a pooled connection
instead of finding the cache "failed" (which sent reads to the database)."""

from concurrent.futures import ThreadPoolExecutor

from service_kit.storage.cache import open_cache


def test_more_concurrent_readers_than_pooled_connections(redis_url, tmp_path, caplog):
    cache = open_cache(redis_url, namespace="concurrency", file_dir=str(tmp_path))
    cache.set("key", {"qty": 1}, 60)
    with ThreadPoolExecutor(max_workers=300) as pool:
        values = list(pool.map(lambda _: cache.get("key"), range(3000)))
    assert values == [{"qty": 1}] * 3000
    assert "failed" not in caplog.text
