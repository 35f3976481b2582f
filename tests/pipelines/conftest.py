from conftest_pg import disposable_postgres, postgres_server, postgres_url  # noqa: F401
