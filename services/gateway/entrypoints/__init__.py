"""The gateway's HTTP edge: the Flask app, its views, the API contract and error mapping."""
