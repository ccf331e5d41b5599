-- session/release: forget the savepoint of a nested Session.rolled_back once undone.
RELEASE SAVEPOINT {name}
