"""Events between the services: contract, broker adapters, transactional outbox, consumers."""
