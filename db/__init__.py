"""The database's one door: every SQL statement paysaga runs, one module per thing stored, each
run inside the caller's transaction where a step needs one; every table declared in `models`
(SQLModel), the engine in `engine`, the migrations under `migrations/`."""
