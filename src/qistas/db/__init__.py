"""Storage: engine and sessions, tables, dialect differences, migrations."""
