import pytest


@pytest.fixture(autouse=True)
def _fresh_engagement_state(engagement_state):
    """Every engagement test starts with empty caches and hit queue (the engagement_state fixture)."""
