"""Follower ids from the users service (`GET /internal/users/{id}/follower-ids`)."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

from common.client import HttpClient

from fanout.adapters.http import get_object, translated
from fanout.domain.model import FollowerPage


class UsersFollowerSource:
    """Pages followers in ascending id order, fetching the next page while the caller
    writes the current one, so HTTP and Redis time overlap instead of adding up."""

    def __init__(self, http: HttpClient, *, page_size: int = 5000,
                 read_ahead: ThreadPoolExecutor | None = None) -> None:
        self.http, self.page_size = http, page_size
        self.read_ahead = read_ahead or ThreadPoolExecutor(1, thread_name_prefix="users-read-ahead")

    def follower_pages(self, user_id: int) -> Iterator[FollowerPage]:
        """Every follower of `user_id`, page by page."""
        # The read-ahead thread runs in the caller's context, so its calls join the trace
        # and keep to the record's deadline.
        pending: Future | None = self.read_ahead.submit(
            contextvars.copy_context().run, self._page, user_id, None, self.page_size)
        try:
            while pending is not None:
                page, next_after = pending.result()
                pending = (self.read_ahead.submit(contextvars.copy_context().run, self._page,
                                                  user_id, next_after, self.page_size)
                           if next_after is not None else None)
                yield page
        finally:
            if pending is not None:
                pending.cancel()

    def followers_count(self, user_id: int) -> int:
        """How many followers `user_id` has (one id fetched, the count comes along)."""
        page, _ = self._page(user_id, None, 1)
        return page.followers_count

    def _page(self, user_id: int, after: int | None, limit: int) -> tuple[FollowerPage, int | None]:
        params: dict[str, object] = {"limit": limit}
        if after is not None:
            params["after"] = str(after)
        path = f"/internal/users/{user_id}/follower-ids"
        body = get_object(self.http, path, params)
        with translated(f"GET users {path}"):
            ids = [int(i) for i in body["ids"]]
            next_after = body.get("next_after")
            page = FollowerPage(ids=ids, followers_count=int(body["followers_count"]))
            return page, int(next_after) if next_after is not None else None

    def close(self) -> None:
        """Stop the read-ahead thread and close the HTTP connections."""
        self.read_ahead.shutdown(wait=False, cancel_futures=True)
        self.http.close()
