"""The PBM gateway: rxfleet's client for it (``client``) and the sandbox gateway
(``sandbox``, its own subpackage, never imported by the client)."""
