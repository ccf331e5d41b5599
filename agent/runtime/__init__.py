"""The running agent: the scheduler, one runner per target, the job registry and the per-target state."""
