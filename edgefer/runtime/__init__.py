"""Placeholder until the runtime lands (issue 2)."""


def load(path, **kwargs):  # noqa: D103
    raise NotImplementedError
