"""Named SQL of the example module: one constant per statement, parameters by name."""

SQL_USERS = """
    SELECT id, name, email, created_at
    FROM example_user
    WHERE name = %(name)s
    ORDER BY id
"""

# A recursive count rather than generate_series, so that it runs on SQLite (`make run`) too.
SQL_NUMBERS = """
    WITH RECURSIVE numbers (n) AS (
        SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < %(count)s
    )
    SELECT n, 'row ' || n AS label
    FROM numbers
"""

# PostgreSQL's sleep (apps.example.apps gives SQLite one of the same name).
SQL_WAIT = "SELECT pg_sleep(%(seconds)s)"
