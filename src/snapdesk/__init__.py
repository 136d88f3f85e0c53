"""SnapDesk: bulk processing of documents and photos."""

__version__ = "0.1.0"
