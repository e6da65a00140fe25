"""``chatload sim``: a simulated Coder chat server that speaks the chats API byte for byte.

A pure core (``accounts``, ``catalog``, ``chats``, ``events``, ``plan``, ``config``,
``workspaces``) holds state and decides what Coder would send; thin asyncio adapters
(``player``, ``hub``, ``stream``, ``watch_hub``, ``api_*``, ``server``) add time, sockets and
HTTP; ``cluster``, ``replica``, ``mirror`` and ``relay`` make several processes one
deployment. Nothing here is imported by
the load generator, so Locust's gevent patching never reaches the server.
"""
