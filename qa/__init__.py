"""cables-qa: question answering over US diplomatic cables with paragraph citations."""

__version__ = "0.1.0"
