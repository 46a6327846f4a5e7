"""Scale-out on NATS JetStream and PostgreSQL (docs/scale-out.md).

    falco.> --[ingress: parse, enrich, hash the workload]--> <out>.<n>  (n < partitions)
    <out>.<n> --[the worker that leases n: correlate, store in PostgreSQL, then ack]

``partition``: which partition a workload belongs to, and the headers ingress adds.
``ingress``: the stage that re-publishes alerts to their partition's subject.
``leases``: membership and partition ownership in a JetStream key-value bucket with a TTL.
``source``: a worker's source: one durable pull consumer per partition it leases.
``handover``: a moved partition's open incidents, restored from the store.
"""
