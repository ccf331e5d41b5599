"""pgradar.exporters: Prometheus collector and HTTP endpoints."""
