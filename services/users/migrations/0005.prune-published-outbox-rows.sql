-- depends: 0002.create-outbox
-- transactional: false
-- Published outbox rows are kept for a retention period (USERS_OUTBOX_RETENTION), then
-- the relay deletes them, oldest first, a bounded batch at a time. This index lets each
-- batch start at the oldest published row instead of scanning what is kept. Built
-- concurrently: an outbox that grew before pruning existed may be large, and a plain
-- build would hold up every follow and sign-up writing to it meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_published ON outbox (published_at)
    WHERE published_at IS NOT NULL;
