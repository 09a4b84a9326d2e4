"""Platform adapters: each imports `bot`, never the reverse."""
