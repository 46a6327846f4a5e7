"""What `kubesentinel status` reports: live workers, partition owners and lag, ingress lag."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kubesentinel.errors import SourceError
from kubesentinel.runtime.scale.leases import live_workers, owners


async def collect(
    url: str,
    *,
    out_stream: str,
    ingress_stream: str | None = None,
    ingress_durable: str = "kubesentinel-ingress",
) -> dict[str, Any]:
    """Workers (id, pid, host, seconds since their heartbeat, partitions), partitions (owner,
    pending = not yet delivered, ack_pending = delivered but not acknowledged) and the ingress
    consumer's lag, read from NATS."""
    import nats
    from nats.js.errors import BucketNotFoundError, NotFoundError

    failures: list[BaseException] = []

    async def failed(exc: BaseException) -> None:  # kept for our message, not printed by nats
        failures.append(exc)

    try:
        # One attempt: with max_reconnect_attempts=0 nats-py retries an unreachable server
        # forever, so a one-shot query would hang.
        nc = await nats.connect(url, name="kubesentinel-status", connect_timeout=3.0,
                                max_reconnect_attempts=1, reconnect_time_wait=0.1,
                                error_cb=failed)  # fmt: skip
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        cause = failures[-1] if failures else exc
        raise SourceError(
            f"cannot connect to NATS at {url}: {cause}",
            hint="is nats-server running there, with JetStream (nats-server -js)?",
        ) from None
    try:
        js = nc.jetstream()
        workers: dict[str, dict[str, Any]] = {}
        held: dict[int, str] = {}
        with contextlib.suppress(BucketNotFoundError, NotFoundError):
            kv = await js.key_value(f"{out_stream}_LEASES")
            workers = await live_workers(kv)
            held = await owners(kv)
        lag: dict[int, tuple[int, int]] = {}
        with contextlib.suppress(NotFoundError):
            for info in await js.consumers_info(out_stream):
                name = info.name or ""
                if name.startswith("ks-part-") and name[8:].isdigit():
                    lag[int(name[8:])] = (info.num_pending or 0, info.num_ack_pending or 0)
        count = max(
            [w.get("partitions", 0) for w in workers.values()] + [len(lag), *(n + 1 for n in held)]
        )
        now = time.time()
        ingress = None
        with contextlib.suppress(NotFoundError):
            stream = ingress_stream or await js.find_stream_name_by_subject("falco.>")
            info = await js.consumer_info(stream, ingress_durable)
            ingress = {
                "stream": stream,
                "pending": info.num_pending or 0,
                "ack_pending": info.num_ack_pending or 0,
            }
        return {
            "workers": [
                {
                    "id": wid,
                    "pid": info.get("pid"),
                    "host": info.get("host"),
                    "heartbeat_age_s": round(now - float(info.get("at", now)), 1),
                    "partitions": sorted(n for n, owner in held.items() if owner == wid),
                }
                for wid, info in sorted(workers.items())
            ],
            "partitions": [
                {
                    "partition": n,
                    "owner": held.get(n),
                    "pending": lag.get(n, (0, 0))[0],
                    "ack_pending": lag.get(n, (0, 0))[1],
                    "lag": sum(lag.get(n, (0, 0))),
                }
                for n in range(count)
            ],
            "ingress": ingress,
        }
    finally:
        await nc.close()
