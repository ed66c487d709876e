"""Many rows into one table at once: COPY on PostgreSQL, one executemany INSERT on SQLite.

The importer stores a batch as a few hundred rows per table. A multi-row INSERT of them is one
long statement with thousands of placeholders, which psycopg converts in Python every time (it
caches only statements of up to 50 parameters): 17 % of the importing process on PostgreSQL.
COPY sends the values as one stream instead. The rows are completed here with the columns'
Python-side defaults (what a Core INSERT would add) and passed through the column types' bind
processors (JSON columns become JSON text), so either path stores the same values.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, insert, text


def insert_rows(connection: Connection, table: Table, rows: list[dict]) -> None:
    """Insert `rows` (dicts of column name -> value) in one go, in the current transaction."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
    else:
        connection.execute(insert(table), rows)


def insert_rows_returning_ids(connection: Connection, table: Table, rows: list[dict]) -> list[int]:
    """Insert `rows` into a table with an integer primary key `id`; their ids, in order."""
    if not rows:
        return []
    if connection.dialect.name != "postgresql":
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(connection.execute(stmt, rows).scalars())
    # Ids taken from the table's sequence first, so the rows can go in by COPY.
    ids = list(
        connection.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": table.name, "n": len(rows)},
        ).scalars()
    )
    _copy(connection, table, [{**row, "id": id_} for row, id_ in zip(rows, ids)])
    return ids


class _Parameters:
    """What a column's callable default reads: the row being inserted."""

    def __init__(self, row: dict):
        self.current_parameters = row

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict:
        return self.current_parameters


def _completed(table: Table, rows: list[dict]) -> list[dict]:
    """Each row with the Python-side defaults of the columns it leaves out (server defaults
    are the database's to fill)."""
    missing = [
        c
        for c in table.columns
        if c.default is not None and (c.default.is_callable or c.default.is_scalar)
    ]
    out = []
    for row in rows:
        full = dict(row)
        for column in missing:
            if column.name in full:
                continue
            default = column.default
            full[column.name] = (
                default.arg(_Parameters(full)) if default.is_callable else default.arg
            )
        out.append(full)
    return out


def _copy(connection: Connection, table: Table, rows: list[dict]) -> None:
    rows = _completed(table, rows)
    names = list(dict.fromkeys(name for row in rows for name in row))
    dialect = connection.dialect
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    raw = connection.connection.driver_connection
    sql = f"COPY {table.name} ({columns}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            values = [row.get(name) for name in names]
            copy.write_row([p(v) if p is not None else v for p, v in zip(processors, values)])
