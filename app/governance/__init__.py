"""Access-rights governance and emergency controls (AC-2…AC-5, SD-1, IR-1, IR-2)."""
