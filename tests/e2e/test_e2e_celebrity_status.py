"""Celebrity status decided when a tweet is posted, and kept by the tweet for good.

Whether followers get a tweet by fan-out or by the read-time merge is decided by timeline
when it accepts the post, from the author's status as users announced it, and carried by
the tweet's events. So an author crossing the threshold later changes nothing for the
tweets they have already posted: a tweet fanned out leaves every home timeline on delete,
and a tweet merged at read time is still read once its author falls below the threshold.
"""

from __future__ import annotations

from common import config, home_timeline
from e2e.test_e2e_stories import DELIVERY, has, wait_until_fanout_consumed


def held_by(redis_client, member, tweet_id: str) -> bool:
    """Whether the member's home timeline in Redis holds the tweet (fan-out wrote it)."""
    return redis_client.zscore(home_timeline.key(int(member.id)),
                               home_timeline.encode(int(tweet_id))) is not None


def test_a_tweet_fanned_out_leaves_home_timelines_on_delete_after_its_author_became_a_celebrity(
        api, redis_client, timeline_celebrity) -> None:
    """Before, fanout looked at the author's count at delete time and skipped the delete."""
    threshold = config.celebrity_threshold()
    author = api.sign_up("rising")
    fans = [api.sign_up("fan") for _ in range(threshold)]
    api.follow(fans[0], author)
    tweet = api.tweet(author, "posted before the fame")
    api.wait_until(lambda: held_by(redis_client, fans[0], tweet["id"]), DELIVERY,
                   message="the tweet fanned out to the first fan")
    for fan in fans[1:]:
        api.follow(fan, author)
    timeline_celebrity(author, True)
    assert api.delete(f"/tweets/{tweet['id']}", headers=author.auth).status_code == 204
    for fan in fans:
        api.wait_until(lambda fan=fan: not held_by(redis_client, fan, tweet["id"]), DELIVERY,
                       message=f"the deleted tweet gone from {fan.username}'s home timeline")


def test_a_tweet_posted_as_a_celebrity_is_still_read_after_its_author_falls_below(
        api, redis_client, timeline_celebrity) -> None:
    """Before, the read merged only the followees who were celebrities at read time."""
    threshold = config.celebrity_threshold()
    star = api.sign_up("fading")
    fans = [api.sign_up("fan") for _ in range(threshold)]
    for fan in fans:
        api.follow(fan, star)
    timeline_celebrity(star, True)
    tweet = api.tweet(star, "posted as a celebrity")
    wait_until_fanout_consumed(api, tweet["id"])
    assert not any(held_by(redis_client, fan, tweet["id"]) for fan in fans)  # not fanned out
    api.unfollow(fans[-1], star)  # below the threshold from now on
    assert api.user(star.username)["followers_count"] == threshold - 1
    timeline_celebrity(star, False)
    # Read only now: no reader has a list of celebrity followees cached from before.
    for fan in fans[:-1]:
        api.wait_until(lambda fan=fan: has(api, fan, tweet["id"]), DELIVERY,
                       message=f"the tweet in {fan.username}'s home timeline")
    assert tweet["id"] not in api.home_ids(fans[-1])  # who unfollowed does not read it
