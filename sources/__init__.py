"""dlt sources of this project: one folder per API (only `chaster` so far)."""
