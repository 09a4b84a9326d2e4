"""paperboy core: knows no platform SDK."""
