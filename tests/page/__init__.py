"""The web page (service/page) in a real headless Chromium against the real service."""
