"""What the gateway knows without any I/O: who is calling, and what of an answer is public."""
