-- Users and the follow graph. Counts live on the user row and change in the same
-- transaction as the follows row, so they can never drift from the graph.
CREATE TABLE users (
    id              bigint      PRIMARY KEY,
    username        text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_]{3,30}$'),
    password_hash   text        NOT NULL,
    display_name    text        NOT NULL DEFAULT '' CHECK (char_length(display_name) <= 50),
    bio             text        NOT NULL DEFAULT '' CHECK (char_length(bio) <= 160),
    followers_count integer     NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    following_count integer     NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    version         integer     NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The primary key serves "whom does X follow"; the second index serves "who follows X",
-- the query fan-out pages through.
CREATE TABLE follows (
    follower_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_by_followee ON follows (followee_id, follower_id);
