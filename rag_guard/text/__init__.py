"""Text helpers the gate and the reply share: words and sentences, and the filter that makes passages data.

Pure, no I/O, and importing nothing else of the package.
"""
