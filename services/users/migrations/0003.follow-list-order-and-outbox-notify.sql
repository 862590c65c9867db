-- depends: 0002.create-outbox
-- Follow lists are served most recent follow first, paged by (created_at, other id):
-- these indexes let each page be a short index range scan, even for a celebrity.
CREATE INDEX follows_followers_recent ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_following_recent ON follows (follower_id, created_at DESC, followee_id DESC);

-- Wake the outbox relay as soon as an event commits, instead of having it poll hard.
-- NOTIFY is delivered at commit and collapses duplicates within a transaction.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
