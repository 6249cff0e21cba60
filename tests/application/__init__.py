"""Application-level tests: the event store, the msgspec mapper and the use cases."""
