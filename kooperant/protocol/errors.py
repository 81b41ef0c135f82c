"""The error raised for a message that is not valid."""


class OfferValidationError(ValueError):
    """Raised by ``parse_offer``, ``parse_withdrawal`` and ``parse_status`` with the reason.

    The name predates withdrawals and status messages. It is kept because callers catch it.
    """
