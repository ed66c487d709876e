"""Mass mail: target lists, campaigns through the outbox, opt-out and opt-in."""
