"""Key material and the cryptographic primitives built on it (EN-1, EN-2, AU-9, LG-2)."""
