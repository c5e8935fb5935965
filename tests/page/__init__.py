"""The web page (service/static) in a real headless Chromium against the real service."""
