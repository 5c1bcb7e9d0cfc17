"""Alpaca broker adapter pieces (the local fake Alpaca server lives in ``fake_server``)."""
