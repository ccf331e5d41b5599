-- session/savepoint: a nested Session.rolled_back: a failure inside leaves the outer
-- transaction usable. Same on 13 to 18.
SAVEPOINT {name}
