"""pgradar.agent: targets, scheduler, collectors, SQL, snapshots, analysis and the CLI."""
