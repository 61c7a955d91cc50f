"""The stores: each a noun module that owns its keys (or tables) and its scripts.

Redis, the fleet's working memory; keys under the prefix (default ``rx``):

* ``runs``: ``run:{id}`` and its ``:work``, ``:ids``, ``:leases``, ``:batches``,
  ``:done``, ``:producer``, ``:abort``, ``:deliveries``; ``vault:{id}``; ``runs``.
* ``tokens``: ``token``, ``token:stats``, ``lock:token``.
* ``breaker``: ``breaker:{health|auth}:open``, ``:tripped``, ``:probe``, ``:stats``, ``:w:{n}``.
* ``pause``: ``gateway:pause``, ``gateway:pauses``.
* ``routes``: ``gateway:miss:{bin}:{pcn}``, ``gateway:route:…``, ``gateway:probe:…``.
* ``crosswalk``: ``crosswalk:{version}``, ``crosswalk:{version}:ready``.
* ``metrics``: the fleet's counters for the exporter.

PostgreSQL, the system of record: ``database`` owns every table (``runs``,
``results``, ``audit_events``, ``dead_letters``, ``schema_migrations``).

Links never touch a client directly: they call these stores.
"""
