"""The e-mail channel: parsing messages, the IMAP source, the poller and acknowledgments."""
