"""The Redis stores: each a noun module that owns its keys and its Lua scripts.

Keys, under the prefix (default ``rx``):

* ``runs``: ``run:{id}`` and its ``:work``, ``:results``, ``:counts``, ``:ids``,
  ``:audit``; ``vault:{id}``; ``runs``.
* ``tokens``: ``token``, ``token:stats``, ``lock:token``.
* ``breaker``: ``breaker:open``, ``:tripped``, ``:probe``, ``:stats``, ``breaker:w:{s}``.
* ``pause``: ``gateway:pause``, ``gateway:pauses``.
* ``routes``: ``gateway:miss:{bin}:{pcn}``, ``gateway:route:…``, ``gateway:probe:…``.
* ``crosswalk``: ``crosswalk:{version}``, ``crosswalk:{version}:ready``.
* ``deadletters``: ``dlq``.

Links never touch a client directly: they call these stores.
"""
