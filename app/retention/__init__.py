"""Retention and destruction (RT-1, RT-2): response content destroyed at the end of its use period."""
