"""Give each test process its own Redis database index, claimed with a lock key in db 0."""

from __future__ import annotations

import os

from redis import Redis

REDIS_SERVER = os.environ.get("CRM_TEST_REDIS", "redis://127.0.0.1:6379")


def claim_index() -> tuple[int, callable]:
    admin = Redis.from_url(f"{REDIS_SERVER}/0")
    for index in range(1, 16):
        key = f"crm-test-db-lock:{index}"
        if admin.set(key, os.getpid(), nx=True, ex=4 * 3600) or _owner_gone(admin, key):
            admin.set(key, os.getpid(), ex=4 * 3600)

            def release(key=key):
                admin.delete(key)
                admin.close()

            return index, release
    raise RuntimeError("no free Redis database index (15 test runs at once?)")


def _owner_gone(admin: Redis, key: str) -> bool:
    """A lock left by a killed test run (same machine) may be taken over."""
    owner = admin.get(key)
    if not owner or not owner.isdigit():
        return False
    try:
        os.kill(int(owner), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
