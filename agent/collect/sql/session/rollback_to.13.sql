-- session/rollback_to: undo a nested Session.rolled_back (then release.13.sql forgets
-- its savepoint). Same on 13 to 18.
ROLLBACK TO SAVEPOINT {name}
