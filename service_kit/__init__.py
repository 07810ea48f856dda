"""Plumbing shared by both services, written once, in rooms that show the architecture:

- `http/`: the HTTP edge (request ids, problem+json, JSON answers), the Connexion app factory,
  the fast path, request validation, health answers, calls to the other service;
- `storage/`: database engines and column types, group commit, driver inserts from tables,
  migrations, the shared cache;
- `messaging/`: events and their contract, the broker port with RabbitMQ and the local spool,
  the transactional outbox and inbox, consumers;
- `process/`: what runs them: the adapters chosen by URL, worker processes, gunicorn settings
  and its worker class (strict request reading), files kept private to the service.

The modules at this level (errors, request ids, exact JSON, configuration, logs) are used by
every room and use none."""
