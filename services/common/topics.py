"""Kafka topic names, shared by producers, consumers and the platform bootstrap."""

TWEETS = "tweets.v1"  # TweetPosted, TweetDeleted; key = author id
FOLLOWS = "follows.v1"  # UserFollowed, UserUnfollowed; key = follower id
FANOUT_DLQ = "fanout.dlq.v1"  # poison messages the fanout consumer group gave up on

ALL = (TWEETS, FOLLOWS, FANOUT_DLQ)
