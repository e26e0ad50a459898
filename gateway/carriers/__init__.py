"""Carriers: the contract plugins implement (``base``), the one way they post to an upstream
(``http``), asking many status queries at once (``pulling``), finding them by entry point
(``registry``) and the receipt-push endpoint (``receipts``)."""
