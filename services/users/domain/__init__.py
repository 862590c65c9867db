"""The users domain: accounts, sessions, profiles and the follow graph, free of I/O.

`model` holds what the service knows, `commands` what it is asked to do, `events` what
it tells the world has happened, `errors` why it may refuse. Nothing here knows about
HTTP, Flask or a database driver.
"""
