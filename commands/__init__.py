"""The command line, above both ``pgradar.agent`` and ``pgradar.exporters``: no package imports back up here."""
