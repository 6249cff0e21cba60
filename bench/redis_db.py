"""A Redis database of the run's own, so that ``ecocase relay`` and ``ecocase worker`` (which
use the fixed ``ecocase`` key namespace) do not meet the queues of tests or other runs.

The first of the databases 15, 14, …, 1 that is empty is claimed with ``SET NX`` of a claim key
(so two runs cannot take the same one) and checked to hold nothing else; at the end every
``ecocase:*`` key in it and the claim are deleted (``SCAN`` + ``DEL``, never a FLUSH). Database
0, the default of tests and of the service, is never used.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

CLAIM_KEY = "ecocase-bench:claim"
NAMESPACE = "ecocase"  # workers.broker.NAMESPACE, the CLI processes' namespace


def db_url(base: str, db: int) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{db}"))


class RedisDb:
    def __init__(self, base_url: str, run_id: str, claim_seconds: int = 6 * 3600) -> None:
        self.base_url, self.run_id, self.claim_seconds = base_url, run_id, claim_seconds
        self.db: int | None = None

    @property
    def url(self) -> str:
        if self.db is None:
            msg = "no Redis database claimed"
            raise RuntimeError(msg)
        return db_url(self.base_url, self.db)

    def _client(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(db_url(self.base_url, db), socket_timeout=10)

    def claim(self) -> str:
        for db in range(15, 0, -1):
            client = self._client(db)
            try:
                if client.dbsize():
                    continue
                if not client.set(CLAIM_KEY, self.run_id, nx=True, ex=self.claim_seconds):
                    continue
                if client.dbsize() == 1:
                    self.db = db
                    return self.url
                client.delete(CLAIM_KEY)  # someone else wrote here meanwhile
            finally:
                client.close()
        msg = "no empty Redis database (1–15) to claim for the run"
        raise RuntimeError(msg)

    def server_version(self) -> str:
        client = redis.Redis.from_url(self.base_url, socket_timeout=5)
        try:
            return str(client.info("server").get("redis_version", "?"))
        finally:
            client.close()

    def release(self) -> int:
        """Deletes the namespace's keys and the claim; how many keys went."""
        if self.db is None:
            return 0
        client = self._client(self.db)
        try:
            deleted = delete_matching(client, f"{NAMESPACE}:*")
            if client.get(CLAIM_KEY) == self.run_id.encode():
                deleted += int(client.delete(CLAIM_KEY))
        finally:
            client.close()
        self.db = None
        return deleted


def delete_matching(client: redis.Redis, pattern: str) -> int:
    """Every key matching ``pattern`` (SCAN + DEL in batches, never FLUSH); how many went."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.delete(*batch))
            batch = []
    if batch:
        deleted += int(client.delete(*batch))
    return deleted
