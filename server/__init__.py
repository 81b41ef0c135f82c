"""The cluster aggregator: ingest from MQTT, storage, HTTP API and dashboard."""
