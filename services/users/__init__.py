"""The users service: accounts, sessions, profiles and the follow graph."""
