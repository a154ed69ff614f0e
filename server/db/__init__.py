"""The gateway's relational state: tenants and API keys (later: audit and feedback).

SQLAlchemy 2 models, an engine factory (SQLite in the data dir by default, PostgreSQL through
psycopg 3), alembic migrations run from code, and the API-key store. Deliberately empty of
imports so `import server.db.x` pulls in only what x needs.
"""
