-- depends: 0001.create-users-and-follows
-- The Idempotency-Key a sign-up was made with, so a repeat (the client lost the answer,
-- or got a 503 after the account was committed) is answered with the same account. One
-- row per keyed sign-up, written in the sign-up's transaction; a key names one account
-- for as long as the account exists.
CREATE TABLE IF NOT EXISTS signup_keys (
    key        text PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 255),
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
