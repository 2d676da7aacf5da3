"""Daily subject and count lists on the business calendar (methods C and D, DL-*)."""
