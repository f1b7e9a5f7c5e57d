"""Reviewing a change to a spec the way code is reviewed.

- `collect`: what the review page shows, from a `Session` (also `report --json`);
- `page`: writes the page, a self-contained folder that opens from `file://` or as a CI
  artifact (HTML, CSS and script inline; copies of the videos, frame strips, inputs);
- `diff`: the spec and lock file at a git ref against the working ones, request by request;
- `markdown`: the diff as a pull-request comment;
- `pick`: set a shot's `pick:` in its spec file in place, changing nothing else.
"""
