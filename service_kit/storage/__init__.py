"""Databases (engines, column types, group commit, driver inserts, migrations) and the cache."""
