"""One insert that tells whether the row was new, without a savepoint: `INSERT … ON CONFLICT DO NOTHING
RETURNING id` (PostgreSQL, SQLite ≥ 3.35). The bounce doors record one event and at most one suppression per
message; the savepoint Django needs to survive an IntegrityError costs two statements each, a third of a bounce's."""

from django.db import connection, models


def row_insert_new(obj: models.Model, unless: models.QuerySet | None = None) -> bool:
    """Insert `obj` unless a unique constraint already holds its twin, or `unless` (a queryset) finds a row,
    in the same statement. True (and `obj.pk` set) when it was inserted; False when nothing was written (the
    caller reads the existing row)."""
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    if unless is None:
        source = f"VALUES ({placeholders})"
    else:
        exists_sql, exists_params = unless.values("pk")[:1].query.sql_with_params()
        source = f"SELECT {placeholders} WHERE NOT EXISTS ({exists_sql})"
        values = [*values, *exists_params]
    sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) {source} ON CONFLICT DO NOTHING RETURNING {qn(meta.pk.column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True
