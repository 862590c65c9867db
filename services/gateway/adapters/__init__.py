"""The gateway's peers over HTTP (users, timeline) and its access-token verifier."""
