-- explain/deallocate: prepared statements outlive a rollback; drop ours.
DEALLOCATE pgradar_explain
