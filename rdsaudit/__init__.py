"""rdsaudit: audit Amazon RDS encryption at rest, read-only."""

__version__ = "0.1.0"
