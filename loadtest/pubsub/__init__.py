"""Real pubsub for the simulator's replicas: PostgreSQL LISTEN/NOTIFY and NATS, and private servers for both."""
