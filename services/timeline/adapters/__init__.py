"""One adapter module per store or collaborator of the timeline service."""
