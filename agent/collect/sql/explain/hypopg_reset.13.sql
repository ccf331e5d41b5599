-- explain/hypopg_reset: forget this session's hypothetical indexes (they
-- outlive the transaction).
SELECT {hypopg}.hypopg_reset() AS reset
