-- depends: 0003.follow-list-order-and-outbox-notify
-- Users are announced on the users topic (UserRegistered at sign-up, ProfileChanged at
-- each edit of the display name or bio), so other services keep their own copy of what
-- they show about a user. The users that exist before this migration were never
-- announced: enqueue one UserRegistered for each, carrying the profile as it is now, so a
-- new consumer fills its copy from the topic alone. The outbox relay publishes them.
--
-- users_announce(topic, ids) builds the same envelope and payload as the service's
-- Postgres adapter (the integration tests compare the two); it stays available for users
-- loaded without the API (pass their ids; NULL announces everyone). It returns how many
-- rows it enqueued. The topic comes from the session setting murmur.users_topic, which
-- the migration entrypoint sets to the profile's users topic; without it this fails.
CREATE FUNCTION users_announce(to_topic text, user_ids bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    WITH announced AS (
        INSERT INTO outbox (topic, key, payload)
        SELECT to_topic, u.id::text, jsonb_build_object(
                   'event_id', gen_random_uuid()::text,
                   'type', 'UserRegistered',
                   'version', 1,
                   'occurred_at', to_char(now() AT TIME ZONE 'UTC',
                                          'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"'),
                   'payload', jsonb_build_object(
                       'user_id', u.id::text,
                       'username', u.username,
                       'display_name', u.display_name,
                       'version', u.version))
        FROM users u
        WHERE user_ids IS NULL OR u.id = ANY (user_ids)
        ORDER BY u.id
        RETURNING 1
    )
    SELECT count(*) FROM announced;
$$;

SELECT users_announce(current_setting('murmur.users_topic'));
