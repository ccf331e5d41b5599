-- session/rollback: end the transaction of Session.rolled_back; nothing it did stays.
ROLLBACK
