"""Errors raised by hash-center generation."""


class CenterGenerationError(ValueError):
    """Centers meeting the requested separation could not be produced within the budget.

    Subclasses ValueError so callers that validate configuration catch it with the same clause;
    the message always names ``bits`` and ``num_classes`` and suggests what to change.
    """
