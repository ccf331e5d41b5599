"""Plans: reading EXPLAIN JSON, plan-shape history, index advice, and the three jobs that plan or read plans."""
