"""The users use cases (`handlers`) and the ports they reach the outside world through."""
