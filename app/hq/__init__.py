"""HQ inquiries on behalf of branches (VI(1)②, HQ-1…HQ-4)."""
