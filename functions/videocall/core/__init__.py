"""The shared core: settings, database, authentication, errors, observability, access rules, migrations."""
