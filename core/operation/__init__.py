"""One module per durable operation; each is a generator driven by the sync or async context."""
