"""The public edge of Murmur behind nginx: authentication, validation and routing, one
downstream call per request."""
