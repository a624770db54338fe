"""segserve experiments: synthetic facade data, PSPNet training, reductions and export.

Run with Debian's interpreter from the repository root, e.g. ``/usr/bin/python3 -m experiments.run_all``.
"""
