"""Turning results into text and files. Pure formatting; printing and writing happen at the edges."""
