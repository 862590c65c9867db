-- depends: 0005.prune-published-outbox-rows
-- Celebrity status, decided by users where follower counts change: `celebrity` is whether
-- the follower count was at or over the threshold after the user's last follow change,
-- `celebrity_version` counts the changes of status. Each change is announced on the users
-- topic (CelebrityStatusChanged, key '<id>/celebrity'), from which timeline decides at
-- each post whether the tweet is fanned out. A user with a version above 0 has been a
-- celebrity, so may have tweets that were never fanned out: the home-timeline read keeps
-- merging theirs (followee-ids with pulled=true).
ALTER TABLE users
    ADD COLUMN celebrity boolean NOT NULL DEFAULT false,
    ADD COLUMN celebrity_version integer NOT NULL DEFAULT 0;

-- users_settle_celebrities(topic, threshold, ids) brings the status of the given users
-- (NULL: everyone) in line with their follower count and the threshold, and enqueues the
-- same event as the service's Postgres adapter for each change; it returns how many
-- changed. It is for users whose counts were written past the service (bulk loads), and
-- for a changed threshold. The topic and the threshold come from the session settings
-- murmur.users_topic and murmur.celebrity_threshold, which the migration entrypoint sets.
CREATE FUNCTION users_settle_celebrities(to_topic text, threshold integer,
                                         user_ids bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    WITH changed AS (
        UPDATE users u
        SET celebrity = NOT u.celebrity, celebrity_version = u.celebrity_version + 1
        WHERE u.celebrity <> (u.followers_count >= threshold)
          AND (user_ids IS NULL OR u.id = ANY (user_ids))
        RETURNING u.id, u.celebrity, u.celebrity_version, u.followers_count
    ), announced AS (
        INSERT INTO outbox (topic, key, payload)
        SELECT to_topic, c.id::text || '/celebrity', jsonb_build_object(
                   'event_id', gen_random_uuid()::text,
                   'type', 'CelebrityStatusChanged',
                   'version', 1,
                   'occurred_at', to_char(now() AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"'),
                   'payload', jsonb_build_object(
                       'user_id', c.id::text,
                       'celebrity', c.celebrity,
                       'version', c.celebrity_version,
                       'followers_count', c.followers_count))
        FROM changed c
        ORDER BY c.id
        RETURNING 1
    )
    SELECT count(*) FROM announced;
$$;

SELECT users_settle_celebrities(current_setting('murmur.users_topic'),
                                current_setting('murmur.celebrity_threshold')::integer);
