"""The one exception type the maps package raises for bad map input."""


class MapError(Exception):
    """A map could not be loaded or used; the message is meant for the user."""
