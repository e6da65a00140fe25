"""The I/O edge towards Coder: the REST client (httpx) and the stream client (websockets)."""
