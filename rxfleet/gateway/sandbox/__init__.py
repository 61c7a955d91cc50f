"""The sandbox PBM gateway: a real adjudicator in miniature, with fault knobs.

``state`` (tokens, idempotency store, per-key counts), ``handler`` (the HTTP
protocol), ``server`` (lifecycle: listen, serve, stop), ``adjudicator`` (plans,
formulary, NCPDP answers), ``scenario`` (the fault knobs).
"""
