"""What fan-out is about, free of I/O: follower pages, the hybrid fan-out policy, the
errors that tell a transient outage from a message that can never succeed."""
