"""The topic-name constants are exactly the catalogue's topics."""

from __future__ import annotations

from smartcity import topic_names
from smartcity.topics import load_catalogue


def test_constants_name_every_catalogue_topic_and_nothing_else() -> None:
    assert sorted(topic_names.ALL) == sorted(spec.name for spec in load_catalogue().topics)


def test_every_constant_is_listed_in_all() -> None:
    constants = {v for k, v in vars(topic_names).items() if k.isupper() and isinstance(v, str)}
    assert constants == set(topic_names.ALL)
