"""Federation: local Flower launcher (up/status/down), site job handler, job runner."""
