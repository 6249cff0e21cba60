"""The key-project case: aggregates, value objects and rules. No framework, no I/O."""
