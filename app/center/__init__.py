"""The link to the credit information center: interface, httpx adapter, simulator (ER-3, RC-1, EN-3)."""
