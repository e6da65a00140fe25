"""``chatload run``: one command for a whole load test."""
