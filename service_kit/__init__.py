"""Plumbing shared by both services, written once: request ids, problem errors, exact JSON,
configuration, database set-up, migrations, outgoing HTTP and the Connexion app factory."""
