"""Export and import of the job store as JSON Lines (`robotni export`, `robotni import`, GET /api/worker/export).

`records.py` is what a line holds (a row of one table, its columns as JSON values, checked field by field),
`export.py` writes a store's rows as lines, `checks.py` checks a whole file, `importer.py` then inserts it in
one transaction. The format is in docs/export.md.
"""
