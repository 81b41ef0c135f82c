"""The error raised for a message that is not valid."""


class OfferValidationError(ValueError):
    """Raised with the reason by every message parser of the protocol, ``parse_offer`` and others.

    The name predates the other messages. It is kept because callers catch it.
    """
