"""The public edge of Murmur behind nginx: authentication, routing and aggregation."""
