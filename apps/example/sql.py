"""Named SQL of the example module: one constant per statement, parameters by name."""

SQL_USERS = """
    SELECT id, name, email, created_at
    FROM example_user
    WHERE name = %(name)s
    ORDER BY id
"""
