"""Splitting result lists into pages for the listing endpoints."""


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` items fill, ``per_page`` at a time (at least one page)."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    if total <= 0:
        return 1
    return total // per_page


def page_slice(page: int, per_page: int) -> slice:
    """The slice of the full list that page ``page`` (1-based) shows."""
    if page < 1:
        raise ValueError("page must be at least 1")
    start = (page - 1) * per_page
    return slice(start, start + per_page)
