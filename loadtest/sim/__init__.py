"""``chatload sim``: a simulated Coder chat server that speaks the chats API byte for byte.

A pure core (``accounts``, ``catalog``, ``chats``, ``events``, ``turns``, ``config``) holds
state and decides what Coder would send; thin asyncio adapters (``runner``, ``hub``,
``stream``, ``api_*``, ``server``) add time, sockets and HTTP. Nothing here is imported by
the load generator, so Locust's gevent patching never reaches the server.
"""
