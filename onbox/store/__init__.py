"""The image store: chunks and image records behind one small interface."""
