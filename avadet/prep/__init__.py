"""Preparing the real AVA dataset: download the annotations, cut the annotated segment out of
each movie, extract 30-fps JPEG frames, write PySlowFast frame lists.

Each step is a library function tested on small local files; ``data_prep/*.py`` are thin
command-line entry points. Video work uses PyAV only (no ffmpeg binary).
"""
