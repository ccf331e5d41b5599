"""What the user configures: the config file, ignore rules, custom query files, and how errors show keys."""
